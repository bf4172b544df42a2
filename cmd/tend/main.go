// Command tend runs and watches over services: see README.md.
package main

import (
	"context"
	"os"

	"github.com/tend-pm/tend/internal/cli"
	"github.com/tend-pm/tend/internal/proc"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == proc.WrapArg {
		// Started by the daemon in front of an instance's program: set
		// LISTEN_PID to this pid and become the program (see proc.Wrap).
		os.Exit(proc.RunWrapper(os.Args[2:]))
	}
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.System()))
}
