package eventstore

import "time"

// CallObserver is told of every call the Store makes for its callers (op
// "append": events or a snapshot; op "read": a stream, a snapshot or the
// head of the log), with how long it took and its error, for metrics.
// Health pings and subscriptions are not calls in this sense.
type CallObserver func(op string, d time.Duration, err error)

// ObserveCalls makes s tell fn of every call from now on. Call it before s
// is used, as the field is read without a lock.
func (s *Store) ObserveCalls(fn CallObserver) { s.observe = fn }

// timed tells the observer of a call that started at start and ended with
// *err; called deferred, with the call's named error result.
func (s *Store) timed(op string, start time.Time, err *error) {
	if s.observe != nil {
		s.observe(op, time.Since(start), *err)
	}
}
