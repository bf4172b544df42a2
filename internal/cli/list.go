package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	ucli "github.com/urfave/cli/v3"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/units"
)

func newList(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:    "list",
		Aliases: []string{"ls", "ps", "status", "l"},
		Usage:   "List apps and their instances",
		Description: `On a terminal: a table. Piped: one tab-separated line per instance, no header:
id, name, instance, pid, status, restarts, uptime (s), cpu (%), memory (bytes).
--json: tend's own shape, the daemon's answer as it is (GET /v1/apps): one
object per app, with its instances; tend jlist prints pm2's shape.`,
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(ctx context.Context, c *ucli.Command) error {
			return list(ctx, env, c, c.Bool("json"))
		},
	}
}

func list(ctx context.Context, env *Env, c *ucli.Command, asJSON bool) error {
	if err := needArgs(c, 0, 0); err != nil {
		return err
	}
	cl, err := env.Client(ctx)
	if err != nil {
		return err
	}
	apps, err := cl.List(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(env.IO.Out, apps)
	}
	return printApps(env.IO, apps)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printApps shows apps as a table on a terminal and as tab-separated lines
// otherwise.
func printApps(o *IO, apps []api.AppInfo) error {
	if !o.OutTTY {
		for _, a := range apps {
			for _, in := range a.Instances {
				uptime := int64(0)
				if in.PID > 0 && !in.Started.IsZero() {
					uptime = int64(o.Now().Sub(in.Started).Seconds())
				}
				fmt.Fprintf(o.Out, "%d\t%s\t%d\t%d\t%s\t%d\t%d\t%.1f\t%d\t%t\n",
					a.ID, a.Name, in.Slot, in.PID, in.Status, in.Restarts, uptime, in.CPU, in.Memory, in.Ready)
			}
		}
		return nil
	}
	if len(apps) == 0 {
		fmt.Fprintln(o.Out, "no apps; `tend start <script>` starts one")
		return nil
	}
	multi := false
	for _, a := range apps {
		multi = multi || len(a.Instances) > 1
	}
	p := &painter{on: o.Color}
	header := []string{"id", "name", "pid", "status", "↺", "uptime", "cpu", "memory"}
	if multi {
		header = []string{"id", "name", "inst", "pid", "status", "↺", "uptime", "cpu", "memory"}
	}
	rows := [][]string{header}
	colors := [][]string{make([]string, len(header))}
	for _, a := range apps {
		for _, in := range a.Instances {
			pid, uptime, cpu, mem := "-", "-", "-", "-"
			if in.PID > 0 {
				pid = strconv.Itoa(in.PID)
				uptime = units.Duration(o.Now().Sub(in.Started))
				cpu = fmt.Sprintf("%.1f%%", in.CPU)
				mem = units.Bytes(in.Memory)
			}
			status := in.Status
			if status == api.StatusOnline && !in.Ready && len(a.Listen) > 0 {
				// Running, but not ready yet: no connection is proxied to
				// it, and a reload waits for it.
				status = "starting"
			}
			row := []string{strconv.Itoa(a.ID), a.Name, pid, status, strconv.Itoa(in.Restarts), uptime, cpu, mem}
			col := make([]string, len(row))
			col[3] = statusColor(in.Status)
			if multi {
				row = append(row[:2], append([]string{strconv.Itoa(in.Slot)}, row[2:]...)...)
				col = append(col[:2], append([]string{""}, col[2:]...)...)
			}
			rows = append(rows, row)
			colors = append(colors, col)
		}
	}
	// Columns are padded by hand: colour escapes must not count as width.
	widths := make([]int, len(header))
	for _, row := range rows {
		for j, c := range row {
			widths[j] = max(widths[j], utf8.RuneCountInString(c))
		}
	}
	for i, row := range rows {
		var b strings.Builder
		for j, c := range row {
			code := colors[i][j]
			if i == 0 {
				code = "1"
			}
			b.WriteString(p.paint(code, c))
			if j < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[j]-utf8.RuneCountInString(c)+2))
			}
		}
		fmt.Fprintln(o.Out, b.String())
	}
	return nil
}

func statusColor(status string) string {
	switch status {
	case api.StatusOnline:
		return "32" // green
	case api.StatusErrored:
		return "31" // red
	case api.StatusStopped:
		return "90" // grey
	default:
		return "33" // yellow: launching, stopping, waiting restart
	}
}

// painter adds ANSI colours when they are wanted (a terminal, no NO_COLOR).
type painter struct{ on bool }

func (p *painter) paint(code, s string) string {
	if !p.on || code == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}
