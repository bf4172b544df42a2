package cli

import (
	"context"
	"encoding/json"
	"fmt"

	ucli "github.com/urfave/cli/v3"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/client"
)

func newLogs(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:          "logs",
		Aliases:       []string{"log"},
		Usage:         "Show the last lines of apps' logs and follow them",
		ArgsUsage:     "[app|id|all]",
		ShellComplete: completeApps(env),
		Flags: []ucli.Flag{
			&ucli.IntFlag{Name: "lines", Value: 15, Usage: "past lines to show from each log file"},
			&ucli.BoolFlag{Name: "nostream", Usage: "print the past lines and exit"},
			&ucli.BoolFlag{Name: "out", Usage: "only stdout"},
			&ucli.BoolFlag{Name: "err", Usage: "only stderr"},
			&ucli.IntFlag{Name: "instance", Value: -1, Usage: "only this instance (slot)"},
			&ucli.BoolFlag{Name: "json", Usage: "one JSON object per line"},
			&ucli.BoolFlag{Name: "raw", Usage: "lines only, no prefix"},
			&ucli.BoolFlag{Name: "timestamp", Usage: "prefix each followed line with the time it was read"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 0, 1); err != nil {
				return err
			}
			target := "all"
			if c.NArg() == 1 {
				target = c.Args().First()
			}
			if c.Bool("out") && c.Bool("err") {
				return usagef("--out and --err together show both streams; give neither")
			}
			stream := ""
			if c.Bool("out") {
				stream = "out"
			} else if c.Bool("err") {
				stream = "err"
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			asJSON, raw, withTime := c.Bool("json"), c.Bool("raw"), c.Bool("timestamp")
			p := &painter{on: env.IO.Color}
			enc := json.NewEncoder(env.IO.Out)
			q := client.LogQuery{Target: target, Instance: int(c.Int("instance")), Stream: stream, Lines: int(c.Int("lines")), Follow: !c.Bool("nostream")}
			return cl.Logs(ctx, q, func(l api.LogLine) error {
				switch {
				case asJSON:
					return enc.Encode(l)
				case raw:
					_, err := fmt.Fprintln(env.IO.Out, l.Line)
					return err
				}
				prefix := l.App
				if l.Instance >= 0 {
					prefix = fmt.Sprintf("%s:%d", l.App, l.Instance)
				}
				if withTime && !l.Time.IsZero() {
					prefix = l.Time.Local().Format("2006-01-02T15:04:05.000") + " " + prefix
				}
				line := l.Line
				switch l.Stream {
				case "err":
					line = p.paint("31", line)
				case "tend":
					line = p.paint("90", line)
				}
				_, err := fmt.Fprintf(env.IO.Out, "%s | %s\n", p.paint("36", prefix), line)
				return err
			})
		},
	}
}
