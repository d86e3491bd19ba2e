package cli

import (
	"context"
	"errors"
	"io"
	"log/slog"
)

// Configurable is a service's configuration as the command line fills it:
// it defines its flags and validates itself whole.
type Configurable interface {
	Flags(fs *FlagSet)
	Validate() error
}

// ParseService reads a service's configuration and the logging flags from
// args, with environment fallbacks, and validates both, reporting every
// problem at once. It returns flag.ErrHelp for -h.
func ParseService[C any, P interface {
	*C
	Configurable
}](name string, args []string, getenv func(string) string, stderr io.Writer) (C, Logging, error) {
	var (
		cfg C
		log Logging
	)
	fs := NewFlagSet(name, getenv, stderr)
	P(&cfg).Flags(fs)
	log.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, log, err
	}
	return cfg, log, errors.Join(fs.Err(), log.Validate(), P(&cfg).Validate())
}

// RunService is the body of a service's main: parse the configuration,
// build the logger (tagged with the service's name), run until ctx ends.
func RunService[C any, P interface {
	*C
	Configurable
}](ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer,
	run func(context.Context, C, *slog.Logger) error) error {
	cfg, log, err := ParseService[C, P](name, args, getenv, stderr)
	if err != nil {
		return err
	}
	return run(ctx, cfg, log.Logger(stderr).With("service", name))
}
