// Command tend runs and watches over services: see README.md.
package main

import (
	"context"
	"os"

	"github.com/tend-pm/tend/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.System()))
}
