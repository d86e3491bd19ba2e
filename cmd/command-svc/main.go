// Command command-svc serves the cart command API (cart.v1.CartCommandService):
// it turns commands into events in EventStoreDB, one stream per user. It is
// configured by flags with environment variables as fallbacks (see -help),
// logs to stderr and stops gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"io"
	"os"

	"github.com/acme/cart/internal/cli"
	"github.com/acme/cart/internal/commandsvc"
)

func main() {
	cli.Main("command-svc", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Getenv, os.Stderr) })
}

// config is the command's configuration: the service's own plus logging.
type config struct {
	Service commandsvc.Config
	Log     cli.Logging
}

// parseConfig reads flags, with environment variables as fallbacks and
// defaults below both, and validates the result, reporting every problem
// (bad environment values included) at once.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	s, l, err := cli.ParseService[commandsvc.Config]("command-svc", args, getenv, stderr)
	return config{Service: s, Log: l}, err
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	return cli.RunService[commandsvc.Config](ctx, "command-svc", args, getenv, stderr, commandsvc.Run)
}
