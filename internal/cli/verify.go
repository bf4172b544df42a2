package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/client"
	"github.com/tend-pm/tend/internal/loadgen"
	"github.com/tend-pm/tend/internal/rawnet"
)

// newVerify is `tend verify`: the zero-downtime proof a user can run
// against their own app. It loads the app's port from this machine with
// clients that never retry (half of them keeping connections alive, half
// opening one per request) while it reloads the app and kills one
// instance, and counts every failure by kind.
func newVerify(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:          "verify",
		Usage:         "Prove zero downtime: load an app while reloading it and killing an instance, and count failed requests",
		ArgsUsage:     "<app>",
		ShellComplete: completeApps(env),
		Flags: []ucli.Flag{
			&ucli.IntFlag{Name: "reloads", Value: 3, Usage: "reloads to run under load"},
			&ucli.BoolFlag{Name: "kill", Value: true, Usage: "also SIGKILL one instance under load (--kill=false to skip)"},
			&ucli.IntFlag{Name: "connections", Value: 8, Usage: "concurrent clients"},
			&ucli.StringFlag{Name: "mode", Value: loadgen.ModeHTTP, Usage: "http (GET --path) or tcp (connect, send a line, read a reply)"},
			&ucli.StringFlag{Name: "path", Value: "/", Usage: "HTTP path to request"},
			&ucli.DurationFlag{Name: "settle", Value: time.Second, Usage: "load before the first and after the last step"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			v := verify{env: env, name: c.Args().First(), reloads: int(c.Int("reloads")), kill: c.Bool("kill"),
				conns: int(c.Int("connections")), mode: c.String("mode"), path: c.String("path"), settle: c.Duration("settle")}
			if v.mode != loadgen.ModeHTTP && v.mode != loadgen.ModeTCP {
				return usagef("--mode %q: want http or tcp", v.mode)
			}
			if v.reloads < 0 || v.conns < 2 {
				return usagef("--reloads must be 0 or more and --connections at least 2")
			}
			return v.run(ctx)
		},
	}
}

type verify struct {
	env     *Env
	name    string
	reloads int
	kill    bool
	conns   int
	mode    string
	path    string
	settle  time.Duration
}

// errVerifyFailed is returned when requests failed; the report says which.
var errVerifyFailed = errors.New("requests failed")

func (v *verify) run(ctx context.Context) error {
	out := v.env.IO.Out
	cl, err := v.env.Client(ctx)
	if err != nil {
		return err
	}
	details, err := cl.Describe(ctx, v.name)
	if err != nil {
		return err
	}
	if len(details) != 1 {
		return usagef("verify takes one app; %q names %d", v.name, len(details))
	}
	d := details[0]
	if len(d.Spec.Listen) == 0 {
		return usagef("%s has no port: verify loads the port tend holds for an app (start it with --port or listen:)", d.Name)
	}
	addr, err := rawnet.ParseAddr(d.Spec.Listen[0])
	if err != nil {
		return err
	}
	addr = addr.Loopback()
	dial := loadgen.Dial(addr)
	fmt.Fprintf(out, "verify %s: %d clients on %s (%s), %d reload(s)%s\n", d.Name, v.conns, addr, v.mode, v.reloads,
		map[bool]string{true: ", 1 instance killed", false: ""}[v.kill])
	var runners []*loadgen.Runner
	for _, keep := range []bool{true, false} {
		r, err := loadgen.Start(ctx, loadgen.Config{Dial: dial, Connections: v.conns / 2, KeepAlive: keep, Mode: v.mode, Path: v.path,
			TCPPayload: []byte("ping\n")})
		if err != nil {
			return err
		}
		defer r.Stop()
		runners = append(runners, r)
	}
	// Any finished request, good or bad, shows the clients are running;
	// failures from the start are reported like any other.
	if err := v.wait(ctx, 10*time.Second, func() bool { return runners[0].Snapshot().Requests > 0 && runners[1].Snapshot().Requests > 0 }); err != nil {
		return fmt.Errorf("%s does not answer on %s: %w", d.Name, addr, err)
	}
	v.sleep(ctx, v.settle)
	for i := range v.reloads {
		start := time.Now()
		if _, err := cl.Act(ctx, api.ActionReload, api.ActionRequest{Targets: []string{d.Name}}); err != nil {
			fmt.Fprintf(out, "  reload %d/%d: FAILED after %s: %v\n", i+1, v.reloads, since(start), err)
			return v.report(runners, nil, err)
		}
		fmt.Fprintf(out, "  reload %d/%d: done in %s\n", i+1, v.reloads, since(start))
	}
	var window *[2]time.Time
	if v.kill {
		w, err := v.killOne(ctx, cl, d.Name)
		if err != nil {
			return v.report(runners, nil, err)
		}
		window = &w
	}
	v.sleep(ctx, v.settle)
	return v.report(runners, window, nil)
}

// killOne kills instance 0 and waits until its replacement is ready. It
// returns the time from the kill to then.
func (v *verify) killOne(ctx context.Context, cl *client.Client, name string) ([2]time.Time, error) {
	out := v.env.IO.Out
	apps, err := cl.Describe(ctx, name)
	if err != nil {
		return [2]time.Time{}, err
	}
	victim := apps[0].Instances[0].PID
	if victim == 0 {
		return [2]time.Time{}, fmt.Errorf("instance 0 of %s is not running", name)
	}
	start := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		return [2]time.Time{}, fmt.Errorf("kill instance 0 (pid %d): %w", victim, err)
	}
	err = v.wait(ctx, 60*time.Second, func() bool {
		apps, err := cl.Describe(ctx, name)
		if err != nil || len(apps) == 0 || len(apps[0].Instances) == 0 {
			return false
		}
		in := apps[0].Instances[0]
		return in.PID != 0 && in.PID != victim && in.Ready
	})
	if err != nil {
		return [2]time.Time{}, fmt.Errorf("instance 0 was not replaced after SIGKILL: %w", err)
	}
	fmt.Fprintf(out, "  SIGKILL to instance 0 (pid %d): replaced and ready in %s\n", victim, since(start))
	return [2]time.Time{start, time.Now()}, nil
}

// report stops the load and prints the figures. Resets and cut-short
// responses between the kill and the replacement being ready are the
// requests the killed process had taken: shown apart, not failures. A
// refused connection or a timeout is a failure wherever it happens.
func (v *verify) report(runners []*loadgen.Runner, kill *[2]time.Time, stepErr error) error {
	out := v.env.IO.Out
	total := map[loadgen.Kind]int{}
	lost := map[loadgen.Kind]int{}
	var requests, ok int
	var p50, p99, maxLat time.Duration
	for _, r := range runners {
		res := r.Stop()
		requests += res.Requests
		ok += res.OK
		for k, n := range res.Failures {
			total[k] += n
		}
		if kill != nil {
			in, _ := res.FailuresBetween(kill[0], kill[1].Add(100*time.Millisecond))
			for _, k := range []loadgen.Kind{loadgen.Reset, loadgen.BadResponse} {
				lost[k] += in[k]
				total[k] -= in[k]
			}
		}
		p50, p99, maxLat = max(p50, res.P50), max(p99, res.P99), max(maxLat, res.Max)
	}
	failed := 0
	var parts []string
	for _, k := range loadgen.Kinds() {
		failed += total[k]
		parts = append(parts, fmt.Sprintf("%s %d", k, total[k]))
	}
	fmt.Fprintf(out, "requests:  %d sent, %d ok\n", requests, ok)
	fmt.Fprintf(out, "failures:  %d (%s)\n", failed, strings.Join(parts, ", "))
	if kill != nil {
		fmt.Fprintf(out, "killed:    %d requests were with the killed instance (reset %d, cut short %d); not counted above\n",
			lost[loadgen.Reset]+lost[loadgen.BadResponse], lost[loadgen.Reset], lost[loadgen.BadResponse])
	}
	fmt.Fprintf(out, "latency:   p50 %s, p99 %s, max %s\n", ms(p50), ms(p99), ms(maxLat))
	switch {
	case stepErr != nil:
		return stepErr
	case failed > 0:
		fmt.Fprintln(out, "result:    FAILED")
		return fmt.Errorf("%s: %d %w during verify", v.name, failed, errVerifyFailed)
	}
	fmt.Fprintln(out, "result:    OK, no failed request")
	return nil
}

// wait polls cond until it holds or limit passes.
func (v *verify) wait(ctx context.Context, limit time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s", limit)
		case <-t.C:
		}
	}
	return nil
}

// sleep lets the load run for d: that is the measurement, not a wait for
// an event.
func (v *verify) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func since(t time.Time) string { return ms(time.Since(t)) }

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
	}
	return d.Round(time.Millisecond).String()
}
