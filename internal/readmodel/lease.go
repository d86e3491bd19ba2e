package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Lease collections.
const (
	DefaultLeases      = "leases"
	DefaultLeaseClaims = "lease_claims"
)

// ErrLeaseLost means the caller does not hold the lease (any more): another
// holder took it over, or it expired before it was renewed. Work done under
// it must stop; Acquire again to go on.
var ErrLeaseLost = errors.New("readmodel: lease lost")

// Lease is a named lease in MongoDB that lets one of several query-svc
// replicas run the projector, with a fencing token (the epoch) that makes a
// holder which lost the lease unable to move the checkpoint:
//
//	leases:       { _id: name, holder: string, epoch: int64, expires_at: date }
//	lease_claims: { _id: "<name>@<epoch>", lease: name, epoch: int64, holder: string, claimed_at: date }
//
// Acquiring a lease that is free or expired takes the next epoch. The
// epoch is arbitrated by inserting its claim document: the unique _id lets
// exactly one acquirer have each epoch, on MongoDB and on FerretDB, whose
// conditional updates are not atomic (TestCompatConditionalUpdateIsNotAtomic
// in internal/dev/embeddedmongo). The lease document is then moved with a
// filter {_id, epoch: previous, expires_at < now}, and renewed and released
// with {_id, holder: me, epoch: mine}. Claims are kept: deleting one would
// let a holder that read an old epoch claim it again.
//
// Clocks. expires_at is written with the holder's clock and compared with
// the acquirer's: FerretDB 1.24 has no update pipelines, so MongoDB's
// $$NOW is not used, and one code path serves both engines. The replicas'
// clocks must agree within ttl/4, which an acquirer waits beyond
// expires_at; the holder itself counts its validity on its monotonic clock
// from the moment it sent Acquire or Renew, so a pause of the holder
// shortens what it believes it holds, never lengthens it.
//
// A Lease is safe for concurrent use; it remembers the epoch it holds.
type Lease struct {
	leases, claims *mongo.Collection
	name, holder   string
	ttl            time.Duration

	mu         sync.Mutex
	epoch      int64     // 0: not held
	validUntil time.Time // with a monotonic reading; meaningful when epoch > 0
	// confirmed is when the stored lease document last showed this holder
	// at epoch (an acquire, a renewal or a Check's read).
	confirmed time.Time
}

// Lease returns the lease name of database db as holder (a replica's
// unique ID) would hold it, for ttl at a time. Renew well within ttl (a
// third of it, say).
func (c *Client) Lease(db, name, holder string, ttl time.Duration) *Lease {
	d := c.mc.Database(db)
	return &Lease{leases: d.Collection(DefaultLeases), claims: d.Collection(DefaultLeaseClaims), name: name, holder: holder, ttl: ttl}
}

type leaseDoc struct {
	Name      string    `bson:"_id"`
	Holder    string    `bson:"holder"`
	Epoch     int64     `bson:"epoch"`
	ExpiresAt time.Time `bson:"expires_at"`
}

type claimDoc struct {
	ID        string    `bson:"_id"`
	Lease     string    `bson:"lease"`
	Epoch     int64     `bson:"epoch"`
	Holder    string    `bson:"holder"`
	ClaimedAt time.Time `bson:"claimed_at"`
}

// skew is how much later than expires_at (by its own clock) an acquirer
// takes a lease over: the bound on the replicas' clock differences.
func (l *Lease) skew() time.Duration { return l.ttl / 4 }

// Epoch returns the epoch held, 0 if none.
func (l *Lease) Epoch() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// held returns the epoch if the lease is still valid by the local clock.
func (l *Lease) held() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch == 0 || !time.Now().Before(l.validUntil) {
		return l.epoch, false
	}
	return l.epoch, true
}

func (l *Lease) lose() {
	l.mu.Lock()
	l.epoch = 0
	l.mu.Unlock()
}

// Acquire takes the lease if it is free, released or expired, or renews it
// if the caller holds it. ok is false, with no error, when another holder
// has it. The epoch is the fencing token: it grows with every takeover.
func (l *Lease) Acquire(ctx context.Context) (epoch int64, ok bool, err error) {
	if _, valid := l.held(); valid {
		switch err := l.Renew(ctx); {
		case err == nil:
			return l.Epoch(), true, nil
		case !errors.Is(err, ErrLeaseLost):
			return 0, false, err
		}
	}
	start := time.Now()
	var cur leaseDoc
	err = l.leases.FindOne(ctx, bson.D{{Key: "_id", Value: l.name}}).Decode(&cur)
	exists := err == nil
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return 0, false, fmt.Errorf("readmodel acquire lease %q: %w", l.name, translate(ctx, err))
	}
	if exists && cur.Holder != "" && !start.After(cur.ExpiresAt.Add(l.skew())) {
		return 0, false, nil // someone holds it
	}
	next, busy, err := l.nextEpoch(ctx, cur.Epoch, start)
	if err != nil || busy {
		return 0, false, err
	}
	claim := claimDoc{ID: l.name + "@" + strconv.FormatInt(next, 10), Lease: l.name, Epoch: next, Holder: l.holder, ClaimedAt: start.UTC()}
	if _, err := l.claims.InsertOne(ctx, claim); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return 0, false, nil // another acquirer has this epoch
		}
		return 0, false, fmt.Errorf("readmodel acquire lease %q: %w", l.name, translate(ctx, err))
	}
	doc := leaseDoc{Name: l.name, Holder: l.holder, Epoch: next, ExpiresAt: start.Add(l.ttl).UTC()}
	if !exists {
		_, err = l.leases.InsertOne(ctx, doc)
		if mongo.IsDuplicateKeyError(err) {
			return 0, false, nil
		}
	} else {
		var res *mongo.UpdateResult
		res, err = l.leases.UpdateOne(ctx, bson.D{
			{Key: "_id", Value: l.name},
			{Key: "epoch", Value: cur.Epoch},
			{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: start.Add(-l.skew())}}},
		}, bson.D{{Key: "$set", Value: bson.D{
			{Key: "holder", Value: doc.Holder}, {Key: "epoch", Value: doc.Epoch}, {Key: "expires_at", Value: doc.ExpiresAt},
		}}})
		if err == nil && res.MatchedCount == 0 {
			return 0, false, nil
		}
	}
	if err != nil {
		return 0, false, fmt.Errorf("readmodel acquire lease %q: %w", l.name, translate(ctx, err))
	}
	l.mu.Lock()
	l.epoch, l.validUntil, l.confirmed = next, start.Add(l.ttl), start
	l.mu.Unlock()
	return next, true, nil
}

// nextEpoch returns the epoch to claim after stored, the lease document's:
// one past the latest claim. busy is true when that claim is newer than
// the lease document and younger than ttl: its acquirer is still moving
// the lease document. An older one was abandoned (its acquirer died
// between claiming and writing the lease) and is skipped.
func (l *Lease) nextEpoch(ctx context.Context, stored int64, now time.Time) (next int64, busy bool, err error) {
	var last claimDoc
	err = l.claims.FindOne(ctx, bson.D{{Key: "lease", Value: l.name}},
		options.FindOne().SetSort(bson.D{{Key: "epoch", Value: -1}})).Decode(&last)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return stored + 1, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("readmodel acquire lease %q: %w", l.name, translate(ctx, err))
	case last.Epoch > stored && now.Before(last.ClaimedAt.Add(l.ttl+l.skew())):
		return 0, true, nil
	}
	return max(stored, last.Epoch) + 1, false, nil
}

// Renew extends the lease by ttl from now. It fails with ErrLeaseLost when
// the caller does not hold it, including when its own clock says it has
// expired: someone may have taken it over, and a write after that moment
// could undo the takeover on FerretDB.
func (l *Lease) Renew(ctx context.Context) error {
	epoch, valid := l.held()
	if !valid {
		l.lose()
		return fmt.Errorf("readmodel renew lease %q: %w", l.name, ErrLeaseLost)
	}
	start := time.Now()
	res, err := l.leases.UpdateOne(ctx, l.mine(epoch),
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires_at", Value: start.Add(l.ttl).UTC()}}}})
	if err != nil {
		return fmt.Errorf("readmodel renew lease %q: %w", l.name, translate(ctx, err))
	}
	if res.MatchedCount == 0 {
		l.lose()
		return fmt.Errorf("readmodel renew lease %q: %w", l.name, ErrLeaseLost)
	}
	l.mu.Lock()
	if l.epoch == epoch {
		l.validUntil, l.confirmed = start.Add(l.ttl), start
	}
	l.mu.Unlock()
	return nil
}

// Release gives the lease up so that another holder can acquire it at
// once (on shutdown, after the last checkpoint). Releasing a lease not
// held is not an error.
func (l *Lease) Release(ctx context.Context) error {
	epoch := l.Epoch()
	if epoch == 0 {
		return nil
	}
	l.lose()
	_, err := l.leases.UpdateOne(ctx, l.mine(epoch), bson.D{{Key: "$set", Value: bson.D{
		{Key: "holder", Value: ""}, {Key: "expires_at", Value: time.Unix(0, 0).UTC()},
	}}})
	if err != nil {
		return fmt.Errorf("readmodel release lease %q: %w", l.name, translate(ctx, err))
	}
	return nil
}

// Check returns nil if the caller holds the lease by its own clock and by
// the stored lease document, else an error wrapping ErrLeaseLost. It is
// the fence of writes that the store cannot make conditional on the epoch
// (Options.IDOnlyFilter); it leaves a window between the check and the
// write, which ttl/4 of clock margin and the checkpoint's own fence bound.
//
// The local clock alone already keeps a holder from writing after another
// replica may have taken over (ttl/4 later by that replica's clock); the
// stored document only adds a guard against clocks that differ by more.
// It is read again once its last confirmation is ttl/8 old, not before
// every write, so that a write costs one round trip, not two.
func (l *Lease) Check(ctx context.Context) error {
	epoch, valid := l.held()
	if !valid {
		l.lose()
		return fmt.Errorf("readmodel check lease %q: %w", l.name, ErrLeaseLost)
	}
	l.mu.Lock()
	recent := time.Since(l.confirmed) < l.ttl/8
	l.mu.Unlock()
	if recent {
		return nil
	}
	start := time.Now()
	var cur leaseDoc
	err := l.leases.FindOne(ctx, bson.D{{Key: "_id", Value: l.name}}).Decode(&cur)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("readmodel check lease %q: %w", l.name, translate(ctx, err))
	}
	if err != nil || cur.Holder != l.holder || cur.Epoch != epoch {
		l.lose()
		return fmt.Errorf("readmodel check lease %q: %w", l.name, ErrLeaseLost)
	}
	l.mu.Lock()
	if l.epoch == epoch {
		l.confirmed = start
	}
	l.mu.Unlock()
	return nil
}

// mine is the filter of the lease document as this holder at epoch holds it.
func (l *Lease) mine(epoch int64) bson.D {
	return bson.D{{Key: "_id", Value: l.name}, {Key: "holder", Value: l.holder}, {Key: "epoch", Value: epoch}}
}

// Holder returns who holds the lease by the stored lease document (empty
// when it is free, released or expired by the caller's clock), so that an
// operation refused on a replica that is not the holder can name the one
// to ask instead.
func (l *Lease) Holder(ctx context.Context) (string, error) {
	var cur leaseDoc
	err := l.leases.FindOne(ctx, bson.D{{Key: "_id", Value: l.name}}).Decode(&cur)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("readmodel lease %q holder: %w", l.name, translate(ctx, err))
	}
	if cur.Holder == "" || time.Now().After(cur.ExpiresAt.Add(l.skew())) {
		return "", nil
	}
	return cur.Holder, nil
}

// ID is the holder ID this Lease acquires as.
func (l *Lease) ID() string { return l.holder }
