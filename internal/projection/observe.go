package projection

import "time"

// Observer is told what a projector does, for metrics; query-svc gives one
// to every projector it starts (Config.Observer) without this package
// knowing what records it. Its methods must be quick and safe for
// concurrent use: a rebuild's projector calls the same Observer as the
// live one while both run.
type Observer interface {
	// Flushed is called after each flush that stored events: how many the
	// batch held, how many changed a document, were skipped as already
	// reflected, or were parked, and how long the flush took.
	Flushed(size, applied, skipped, parked int, took time.Duration)
	// Resubscribed is called when a subscription failed and is about to be
	// restarted from the checkpoint (Progress.Reconnects counts the same
	// per projector; this counts across restarts and rebuilds).
	Resubscribed()
}

type nopObserver struct{}

func (nopObserver) Flushed(int, int, int, int, time.Duration) {}
func (nopObserver) Resubscribed()                             {}
