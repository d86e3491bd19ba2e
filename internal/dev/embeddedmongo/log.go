package embeddedmongo

import (
	"context"
	"log/slog"
	"os"
	"strings"
)

// defaultLogger is used when Config.Logger is nil: FerretDB's warnings and errors on stderr,
// minus its dumps of failed command replies (see quietHandler).
func defaultLogger() *slog.Logger {
	return slog.New(quietHandler{slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})})
}

// quietHandler drops Warn-level records of FerretDB that are routine rather than a problem:
//   - dumps of every reply with ok:0: the client already receives those errors, and the driver's
//     endSessions call on every Disconnect (a command FerretDB does not know) would otherwise print
//     two multi-line records each time;
//   - "Failed to set deadline" on a connection the client has just closed during shutdown.
type quietHandler struct{ slog.Handler }

// routineWarnings are the message prefixes quietHandler drops.
var routineWarnings = []string{"Response header:", "Response message:", "Failed to set deadline:"}

// Handle implements slog.Handler.
func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		for _, p := range routineWarnings {
			if strings.HasPrefix(r.Message, p) {
				return nil
			}
		}
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler; it keeps the filter on derived handlers (FerretDB names its
// per-connection loggers with attributes).
func (h quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler and keeps the filter on derived handlers.
func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}
