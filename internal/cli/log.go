package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// ValidateLog reports every problem of a level and format at once, in the
// words of the flags, so that a main can join them with its other errors.
func ValidateLog(level, format string) error {
	var errs []error
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		errs = append(errs, fmt.Errorf("log-level %q: want debug, info, warn or error", level))
	}
	if format != "json" && format != "text" {
		errs = append(errs, fmt.Errorf("log-format %q: want json or text", format))
	}
	return errors.Join(errs...)
}

// NewLogger builds the logger for a validated level and format: JSON for
// machines (the default), text for people.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by the caller; info otherwise
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
