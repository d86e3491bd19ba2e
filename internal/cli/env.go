package cli

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

// NewEnv reads from getenv (os.Getenv, or a map in tests).
func NewEnv(getenv func(string) string) *Env { return &Env{getenv: getenv} }

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

// Float64 is the number in key, or def when unset; a value that does not
// parse is remembered for Err and gives def.
func (e *Env) Float64(key string, def float64) float64 {
	v := e.getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s %q: not a number", key, v))
		return def
	}
	return n
}

// Bool is the boolean in key, or def when unset; a value that does not
// parse is remembered for Err and gives def.
func (e *Env) Bool(key string, def bool) bool {
	v := e.getenv(key)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s %q: not a boolean", key, v))
		return def
	}
	return b
}

// Err joins every value that did not parse.
func (e *Env) Err() error { return errors.Join(e.errs...) }
