// Command server is Rapporteur: run with no configuration it starts its own
// private Postgres, loads a demo event and serves the seminar. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one ends the process at once
	// (a shutdown that hangs).
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "rapporteur: %v\n", err)
		os.Exit(1)
	}
}
