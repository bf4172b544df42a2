package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/client"
)

func newLogs(env *Env) *cobra.Command {
	var o struct {
		lines                 int
		noStream, out, errs   bool
		asJSON, raw, withTime bool
		instance              int
	}
	cmd := &cobra.Command{
		Use:     "logs [app|id|all]",
		Aliases: []string{"log"},
		Short:   "Show the last lines of apps' logs and follow them",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := "all"
			if len(args) == 1 {
				target = args[0]
			}
			if o.out && o.errs {
				return usagef("--out and --err together show both streams; give neither")
			}
			stream := ""
			if o.out {
				stream = "out"
			} else if o.errs {
				stream = "err"
			}
			c, err := env.Client(cmd.Context())
			if err != nil {
				return err
			}
			p := &painter{on: env.IO.Color}
			enc := json.NewEncoder(env.IO.Out)
			q := client.LogQuery{Target: target, Instance: o.instance, Stream: stream, Lines: o.lines, Follow: !o.noStream}
			return c.Logs(cmd.Context(), q, func(l api.LogLine) error {
				switch {
				case o.asJSON:
					return enc.Encode(l)
				case o.raw:
					_, err := fmt.Fprintln(env.IO.Out, l.Line)
					return err
				}
				prefix := l.App
				if l.Instance >= 0 {
					prefix = fmt.Sprintf("%s:%d", l.App, l.Instance)
				}
				if o.withTime && !l.Time.IsZero() {
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
		ValidArgsFunction: completeApps(env),
	}
	f := cmd.Flags()
	f.IntVar(&o.lines, "lines", 15, "past lines to show from each log file")
	f.BoolVar(&o.noStream, "nostream", false, "print the past lines and exit")
	f.BoolVar(&o.out, "out", false, "only stdout")
	f.BoolVar(&o.errs, "err", false, "only stderr")
	f.IntVar(&o.instance, "instance", -1, "only this instance (slot)")
	f.BoolVar(&o.asJSON, "json", false, "one JSON object per line")
	f.BoolVar(&o.raw, "raw", false, "lines only, no prefix")
	f.BoolVar(&o.withTime, "timestamp", false, "prefix each followed line with the time it was read")
	return cmd
}
