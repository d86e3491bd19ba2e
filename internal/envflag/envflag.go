// Package envflag holds the environment fallbacks of the programs' flags:
// each flag's default comes from an environment variable when it is set,
// so that containers configure with env and people with flags, and a bad
// value in the environment is reported with the other problems at once.
package envflag

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Env reads defaults from an environment (os.Getenv, or a map in tests).
// An empty variable counts as unset, as shells and compose files often
// leave them.
type Env struct {
	getenv func(string) string
	errs   []error
}

// New reads from getenv.
func New(getenv func(string) string) *Env { return &Env{getenv: getenv} }

// String is key's value, or def when unset.
func (e *Env) String(key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}

// Duration is key's value as a time.Duration, or def when unset; a value
// that does not parse is remembered for Err and gives def.
func (e *Env) Duration(key string, def time.Duration) time.Duration {
	v := e.getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s %q: not a duration", key, v))
		return def
	}
	return d
}

// Int is key's value as an int, or def when unset; a value that does not
// parse is remembered for Err and gives def.
func (e *Env) Int(key string, def int) int {
	v := e.getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s %q: not an integer", key, v))
		return def
	}
	return n
}

// Err joins every value that did not parse.
func (e *Env) Err() error { return errors.Join(e.errs...) }
