package projection

import "context"

// Exclusive runs fn while no flush of this projector is in progress and
// none starts until fn returns. The parking lot's replay uses it to rewrite
// a cart's document and clear its stale flag without racing the projector
// parking a newer event of the same cart: a flush loads the documents it
// changes when it runs, so events the projector holds in memory meanwhile
// are applied on top of what fn wrote. It works whether or not the
// projector is running; fn should be short, as projection waits for it.
func (p *Projector) Exclusive(ctx context.Context, fn func(context.Context) error) error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	// fn may rewrite any document: the next flush reads them again.
	defer p.cache.reset()
	return fn(ctx)
}
