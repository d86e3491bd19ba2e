package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// FlagSet is a flag set whose every flag falls back to an environment
// variable, named in its usage line, and then to a default; Parse reports
// bad flags, bad environment values and stray arguments together.
type FlagSet struct {
	*flag.FlagSet
	env *Env
}

// NewFlagSet returns the flag set of the program name; usage goes to
// stderr. Parse (of the embedded flag.FlagSet) stops at the first bad flag
// and returns flag.ErrHelp for -h; Err then reports the rest.
func NewFlagSet(name string, getenv func(string) string, stderr io.Writer) *FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &FlagSet{FlagSet: fs, env: NewEnv(getenv)}
}

func withEnv(usage, key string) string {
	if key == "" {
		return usage
	}
	return fmt.Sprintf("%s (env %s)", usage, key)
}

// StringVar defines a string flag with env key as its fallback.
func (f *FlagSet) StringVar(p *string, name, key, def, usage string) {
	f.FlagSet.StringVar(p, name, f.env.String(key, def), withEnv(usage, key))
}

// DurationVar defines a duration flag with env key as its fallback.
func (f *FlagSet) DurationVar(p *time.Duration, name, key string, def time.Duration, usage string) {
	f.FlagSet.DurationVar(p, name, f.env.Duration(key, def), withEnv(usage, key))
}

// IntVar defines an integer flag with env key as its fallback.
func (f *FlagSet) IntVar(p *int, name, key string, def int, usage string) {
	f.FlagSet.IntVar(p, name, f.env.Int(key, def), withEnv(usage, key))
}

// Float64Var defines a number flag with env key as its fallback.
func (f *FlagSet) Float64Var(p *float64, name, key string, def float64, usage string) {
	f.FlagSet.Float64Var(p, name, f.env.Float64(key, def), withEnv(usage, key))
}

// BoolVar defines a boolean flag with env key as its fallback ("true",
// "1", ... as strconv.ParseBool reads them).
func (f *FlagSet) BoolVar(p *bool, name, key string, def bool, usage string) {
	f.FlagSet.BoolVar(p, name, f.env.Bool(key, def), withEnv(usage, key))
}

// Err returns every problem Parse did not stop at, at once: bad
// environment values and stray arguments. Programs join it with their
// configuration's own Validate.
func (f *FlagSet) Err() error {
	var argErr error
	if f.NArg() > 0 {
		argErr = fmt.Errorf("unexpected arguments: %v", f.Args())
	}
	return errors.Join(f.env.Err(), argErr)
}

// Logging is the logging configuration every program takes.
type Logging struct {
	Level  string
	Format string
}

// Flags defines -log-level and -log-format (env CART_LOG_LEVEL,
// CART_LOG_FORMAT) on fs.
func (l *Logging) Flags(fs *FlagSet) {
	fs.StringVar(&l.Level, "log-level", "CART_LOG_LEVEL", "info", "debug, info, warn or error")
	fs.StringVar(&l.Format, "log-format", "CART_LOG_FORMAT", "json", "json or text")
}

// Validate reports every problem of the logging flags at once.
func (l Logging) Validate() error { return ValidateLog(l.Level, l.Format) }

// Logger builds the configured logger (validated before) writing to w.
func (l Logging) Logger(w io.Writer) *slog.Logger { return NewLogger(w, l.Level, l.Format) }
