package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Main runs a program's body (which reads os.Args, the environment and
// the standard streams through the arguments its closure passes, so that
// tests drive the body without a process) until SIGINT or SIGTERM, which cancel its context so
// that it stops gracefully, and exits 1 after printing the error it
// returned. -h/-help is not an error. A stop on a signal is a clean exit
// (status 0), so that `make run` ended with Ctrl-C does not report a
// failure.
func Main(name string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
