// Command query-svc serves the cart query API (cart.v1.CartQueryService):
// it projects the cart events of EventStoreDB into a MongoDB read model and
// answers queries from it. It is configured by flags with environment
// variables as fallbacks (see -help), logs to stderr and stops gracefully on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"io"
	"os"

	"github.com/acme/cart/internal/cli"
	"github.com/acme/cart/internal/querysvc"
)

func main() {
	cli.Main("query-svc", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Getenv, os.Stderr) })
}

// config is the command's configuration: the service's own plus logging.
type config struct {
	Service querysvc.Config
	Log     cli.Logging
}

// parseConfig reads flags, with environment variables as fallbacks and
// defaults below both, and validates the result, reporting every problem
// (bad environment values included) at once.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	s, l, err := cli.ParseService[querysvc.Config]("query-svc", args, getenv, stderr)
	return config{Service: s, Log: l}, err
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	return cli.RunService[querysvc.Config](ctx, "query-svc", args, getenv, stderr, querysvc.Run)
}
