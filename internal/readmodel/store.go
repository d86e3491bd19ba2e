package readmodel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/tracing"
)

// Default collection names.
const (
	DefaultCarts       = "carts"
	DefaultCheckpoints = "checkpoints"
)

// defaultServerSelectionTimeout replaces the driver's 30 s so that an
// unreachable MongoDB fails calls (and health checks) quickly; a
// serverSelectionTimeoutMS in the URI still wins.
const defaultServerSelectionTimeout = 5 * time.Second

// Client is a connection pool to one MongoDB deployment, shared by every
// Store made from it.
type Client struct {
	mc   *mongo.Client
	opts Options
}

// Connect creates a client for uri with the default options, for MongoDB.
// Like the driver, it does not wait for the server: use Ping to check that
// it answers.
func Connect(ctx context.Context, uri string) (*Client, error) {
	return ConnectWith(ctx, uri, Options{})
}

// ConnectWith creates a client for uri whose Stores use the server as opts
// say (FerretDBCompat for FerretDB).
func ConnectWith(ctx context.Context, uri string, opts Options) (*Client, error) {
	if opts.MaxBulkWrite < 0 {
		return nil, fmt.Errorf("readmodel connect: MaxBulkWrite %d is negative", opts.MaxBulkWrite)
	}
	copts := options.Client().SetServerSelectionTimeout(defaultServerSelectionTimeout).ApplyURI(uri)
	if tracing.Enabled(opts.TracerProvider) {
		copts.SetMonitor(commandMonitor(opts.TracerProvider))
	}
	mc, err := mongo.Connect(copts)
	if err != nil {
		return nil, fmt.Errorf("readmodel connect: %w", err)
	}
	return &Client{mc: mc, opts: opts}, nil
}

// Ping checks that MongoDB answers, for health checks.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.mc.Ping(ctx, nil); err != nil {
		return fmt.Errorf("readmodel ping: %w", translate(ctx, err))
	}
	return nil
}

// Close disconnects, waiting for operations in flight up to ctx's deadline.
func (c *Client) Close(ctx context.Context) error {
	if err := c.mc.Disconnect(ctx); err != nil {
		return fmt.Errorf("readmodel close: %w", err)
	}
	return nil
}

// Collections names the collections a Store uses; empty names get the defaults.
type Collections struct {
	Carts       string
	Checkpoints string
}

// Store is the read model in one database and one pair of collections. It is
// safe for concurrent use.
type Store struct {
	db     string
	opts   Options
	hooked atomic.Bool // Options.CollectionWritten has been called
	// fence, if not nil, is checked before writes whose filter does not
	// guard them (Options.IDOnlyFilter); see Fenced.
	fence func(ctx context.Context) error
	lease *Lease // fences the checkpoints; see Fenced
	// claimed is the lease epoch of the last LoadCheckpoint of a fenced
	// store (0: none): the epoch since which Known writes can be trusted.
	claimed     atomic.Int64
	carts       *mongo.Collection
	checkpoints *mongo.Collection
}

// Store returns the read model in database db with the given collections.
// Stores made from one Client share its connections, so a second projector
// (e.g. a rebuild into a fresh carts collection) costs no new pool.
func (c *Client) Store(db string, names Collections) *Store {
	if names.Carts == "" {
		names.Carts = DefaultCarts
	}
	if names.Checkpoints == "" {
		names.Checkpoints = DefaultCheckpoints
	}
	d := c.mc.Database(db)
	return &Store{db: db, opts: c.opts, carts: d.Collection(names.Carts), checkpoints: d.Collection(names.Checkpoints)}
}

// CartsCollection is the name of the collection holding the carts.
func (s *Store) CartsCollection() string { return s.carts.Name() }

var _ projection.Store = (*Store)(nil)

// money is cart.Money as stored.
type money struct {
	CurrencyCode string `bson:"currency_code"`
	Units        int64  `bson:"units"`
	Nanos        int32  `bson:"nanos"`
}

// item is a cart line as stored.
type item struct {
	ProductID string `bson:"product_id"`
	Quantity  int32  `bson:"quantity"`
	UnitPrice money  `bson:"unit_price"`
}

// cartDoc is a document of the carts collection.
type cartDoc struct {
	UserID      string     `bson:"_id"`
	Items       []item     `bson:"items"`
	Version     int64      `bson:"version"`
	UpdatedAt   *time.Time `bson:"updated_at,omitempty"`
	Stale       bool       `bson:"stale"`
	StaleReason string     `bson:"stale_reason,omitempty"`
	// WriteID is set by the WriteCarts call that inserted the document
	// (a random value per call): when an insert ends in a duplicate key,
	// reading it back tells this call's own insert (FerretDB's redo after
	// a partial bulk write) from a document that was already there. A
	// replace drops it; queries ignore it.
	WriteID string `bson:"write_id,omitempty"`
}

// checkpointDoc is a document of the checkpoints collection.
type checkpointDoc struct {
	Name      string    `bson:"_id"`
	Commit    int64     `bson:"commit"`
	Prepare   int64     `bson:"prepare"`
	UpdatedAt time.Time `bson:"updated_at"`
}

func toDoc(d projection.CartDoc) cartDoc {
	out := cartDoc{
		UserID:      d.UserID,
		Items:       make([]item, len(d.Cart.Items)),
		Version:     d.Version,
		Stale:       d.Stale,
		StaleReason: d.StaleReason,
	}
	for i, it := range d.Cart.Items {
		out.Items[i] = item{
			ProductID: it.ProductID,
			Quantity:  int32(it.Quantity),
			UnitPrice: money{it.UnitPrice.CurrencyCode, it.UnitPrice.Units, it.UnitPrice.Nanos},
		}
	}
	if !d.UpdatedAt.IsZero() {
		t := d.UpdatedAt.UTC()
		out.UpdatedAt = &t
	}
	return out
}

func fromDoc(d cartDoc) projection.CartDoc {
	out := projection.CartDoc{
		UserID:      d.UserID,
		Version:     d.Version,
		Stale:       d.Stale,
		StaleReason: d.StaleReason,
	}
	if len(d.Items) > 0 {
		out.Cart.Items = make([]cart.Item, len(d.Items))
		for i, it := range d.Items {
			out.Cart.Items[i] = cart.Item{
				ProductID: it.ProductID,
				Quantity:  int(it.Quantity),
				UnitPrice: cart.Money{CurrencyCode: it.UnitPrice.CurrencyCode, Units: it.UnitPrice.Units, Nanos: it.UnitPrice.Nanos},
			}
		}
	}
	if d.UpdatedAt != nil {
		out.UpdatedAt = d.UpdatedAt.UTC()
	}
	return out
}

// GetCart returns a user's document; ok is false when the user has none.
func (s *Store) GetCart(ctx context.Context, userID string) (doc projection.CartDoc, ok bool, err error) {
	defer s.timed("read", time.Now(), &err)
	var d cartDoc
	err = s.carts.FindOne(ctx, bson.D{{Key: "_id", Value: userID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return projection.CartDoc{}, false, nil
	}
	if err != nil {
		return projection.CartDoc{}, false, fmt.Errorf("readmodel get cart %q: %w", userID, translate(ctx, err))
	}
	return fromDoc(d), true, nil
}

// readParallelism bounds the point reads a batch runs at once.
const readParallelism = 8

// LoadCarts implements projection.Store: one find with $in, or point reads
// with Options.PointReads.
func (s *Store) LoadCarts(ctx context.Context, userIDs []string) (_ map[string]projection.CartDoc, err error) {
	defer s.timed("read", time.Now(), &err)
	docs, err := s.read(ctx, userIDs, nil)
	if err != nil {
		return nil, fmt.Errorf("readmodel load carts: %w", err)
	}
	out := make(map[string]projection.CartDoc, len(docs))
	for id, d := range docs {
		out[id] = fromDoc(d)
	}
	return out, nil
}

// read reads the users' documents (with projection, if not nil) as the
// options say; missing documents are absent.
func (s *Store) read(ctx context.Context, userIDs []string, proj any) (map[string]cartDoc, error) {
	if len(userIDs) == 0 {
		return map[string]cartDoc{}, nil
	}
	if s.opts.PointReads {
		return s.readEach(ctx, userIDs, proj)
	}
	return s.readIn(ctx, userIDs, proj)
}

// readIn reads the users' documents with one find {_id: {$in: userIDs}}.
func (s *Store) readIn(ctx context.Context, userIDs []string, proj any) (map[string]cartDoc, error) {
	opts := options.Find()
	if proj != nil {
		opts.SetProjection(proj)
	}
	cur, err := s.carts.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: userIDs}}}}, opts)
	if err != nil {
		return nil, translate(ctx, err)
	}
	var docs []cartDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(ctx, err)
	}
	out := make(map[string]cartDoc, len(docs))
	for _, d := range docs {
		out[d.UserID] = d
	}
	return out, nil
}

// readEach reads the users' documents (with projection, if not nil) by
// point reads, readParallelism at a time; missing documents are absent.
func (s *Store) readEach(ctx context.Context, userIDs []string, proj any) (map[string]cartDoc, error) {
	out := make(map[string]cartDoc, len(userIDs))
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, readParallelism)
	)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := options.FindOne()
	if proj != nil {
		opts.SetProjection(proj)
	}
	for _, id := range userIDs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var d cartDoc
			err := s.carts.FindOne(rctx, bson.D{{Key: "_id", Value: id}}, opts).Decode(&d)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				out[id] = d
			case errors.Is(err, mongo.ErrNoDocuments):
			case firstErr == nil:
				firstErr = translate(ctx, err)
				cancel()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// WriteCarts implements projection.Store: one unordered bulk write (or
// one per Options.MaxBulkWrite writes) of inserts (new documents) and
// whole-document replaces guarded by the version read. A duplicate key on
// insert or a replace that matched nothing means another writer got there
// first. The bulk result only counts, so when anything missed, the users'
// versions are read back: a user whose document is not at the version
// written is a conflict.
func (s *Store) WriteCarts(ctx context.Context, writes []projection.CartWrite) (_ []string, err error) {
	defer s.timed("write", time.Now(), &err)
	var conflicts []string
	for len(writes) > 0 {
		if err := s.fenceWrites(); err != nil {
			return nil, err
		}
		n := len(writes)
		if s.opts.MaxBulkWrite > 0 {
			n = min(n, s.opts.MaxBulkWrite)
		}
		c, err := s.writeChunk(ctx, writes[:n])
		if err != nil {
			return nil, err
		}
		conflicts = append(conflicts, c...)
		writes = writes[n:]
	}
	return conflicts, nil
}

func (s *Store) writeChunk(ctx context.Context, writes []projection.CartWrite) ([]string, error) {
	if s.opts.IDOnlyFilter {
		return s.writeChunkByID(ctx, writes)
	}
	writeID := newWriteID()
	models := make([]mongo.WriteModel, len(writes))
	for i, w := range writes {
		doc := toDoc(w.Doc)
		if w.Create {
			doc.WriteID = writeID
			models[i] = mongo.NewInsertOneModel().SetDocument(doc)
		} else {
			models[i] = mongo.NewReplaceOneModel().
				SetFilter(bson.D{{Key: "_id", Value: doc.UserID}, {Key: "version", Value: w.ExpectedVersion}}).
				SetReplacement(doc)
		}
	}
	all, err := s.bulk(ctx, models)
	if err != nil || all {
		return nil, err
	}
	return s.conflicts(ctx, writes, writeID)
}

// newWriteID is the WriteID of one WriteCarts call's inserts.
func newWriteID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// writeChunkByID is writeChunk with Options.IDOnlyFilter: the stored
// versions are read by _id first, and only the replaces whose document is
// at the expected version are written, with the filter {_id}. Between the
// read and the write another writer could move the document and be
// overwritten: that is why this mode needs a single fenced writer.
//
// Known replaces skip the read when the store is fenced and the lease is
// still at the epoch of the last LoadCheckpoint: the projector learned
// their versions from its own writes since that LoadCheckpoint, and as
// epochs grow with every takeover, no other holder can have written
// since. The read would tell nothing the single fenced writer does not
// know, and it costs as much as the write itself.
func (s *Store) writeChunkByID(ctx context.Context, writes []projection.CartWrite) ([]string, error) {
	trustKnown := false
	if s.lease != nil {
		epoch, ok := s.lease.held()
		trustKnown = ok && epoch != 0 && epoch == s.claimed.Load()
	}
	var replaced []string
	for _, w := range writes {
		if !w.Create && !(w.Known && trustKnown) {
			replaced = append(replaced, w.Doc.UserID)
		}
	}
	stored, err := s.versions(ctx, replaced)
	if err != nil {
		return nil, fmt.Errorf("readmodel write carts: %w", err)
	}
	var (
		conflicts []string
		written   []projection.CartWrite
		models    []mongo.WriteModel
		writeID   = newWriteID()
	)
	for _, w := range writes {
		doc := toDoc(w.Doc)
		if w.Create {
			doc.WriteID = writeID
			written = append(written, w)
			models = append(models, mongo.NewInsertOneModel().SetDocument(doc))
			continue
		}
		switch v, ok := stored[doc.UserID]; {
		case w.Known && trustKnown, ok && v == w.ExpectedVersion:
			written = append(written, w)
			models = append(models, mongo.NewReplaceOneModel().
				SetFilter(bson.D{{Key: "_id", Value: doc.UserID}}).
				SetReplacement(doc))
		case ok && v == w.Doc.Version:
			// Someone else already made this version: done.
		default:
			conflicts = append(conflicts, doc.UserID)
		}
	}
	if len(models) == 0 {
		return conflicts, nil
	}
	// Inserts are guarded by the unique _id whoever sends them: only
	// replaces, filtered by _id alone, need the lease read first.
	if s.fence != nil && hasReplace(models) {
		if err := s.fence(ctx); err != nil {
			return nil, fmt.Errorf("readmodel write carts: %w", err)
		}
	}
	all, err := s.bulk(ctx, models)
	if err != nil {
		return nil, err
	}
	if !all {
		c, err := s.conflicts(ctx, written, writeID)
		if err != nil {
			return nil, err
		}
		conflicts = append(conflicts, c...)
	}
	return conflicts, nil
}

// hasReplace tells whether models holds a replace (not only inserts).
func hasReplace(models []mongo.WriteModel) bool {
	for _, m := range models {
		if _, ok := m.(*mongo.ReplaceOneModel); ok {
			return true
		}
	}
	return false
}

// bulk runs one unordered bulk write; all is true when every model was
// applied (inserted or matched). After duplicate keys it redoes the models
// one by one if the options say so (FerretDB stopped at the first).
func (s *Store) bulk(ctx context.Context, models []mongo.WriteModel) (all bool, err error) {
	res, err := s.carts.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	var bwe mongo.BulkWriteException
	switch {
	case err == nil:
		all = res.InsertedCount+res.MatchedCount == int64(len(models))
	case errors.As(err, &bwe) && bwe.WriteConcernError == nil && onlyDuplicateKeys(bwe):
		// MongoDB has attempted every write; FerretDB stopped at the first failure.
		if s.opts.RedoAfterWriteError {
			if err := s.writeEach(ctx, models); err != nil {
				return false, fmt.Errorf("readmodel write carts: %w", err)
			}
		}
	default:
		return false, fmt.Errorf("readmodel write carts: %w", translate(ctx, err))
	}
	if err := s.collectionWritten(ctx); err != nil {
		return false, fmt.Errorf("readmodel write carts: %w", err)
	}
	return all, nil
}

// collectionWritten calls Options.CollectionWritten after the Store's first
// bulk write (the collection exists now), until a call succeeds.
func (s *Store) collectionWritten(ctx context.Context) error {
	if s.opts.CollectionWritten == nil || s.hooked.Load() {
		return nil
	}
	if err := s.opts.CollectionWritten(ctx, s.db); err != nil {
		return fmt.Errorf("after writing to %s: %w", s.carts.Name(), err)
	}
	s.hooked.Store(true)
	return nil
}

func onlyDuplicateKeys(bwe mongo.BulkWriteException) bool {
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return false
		}
	}
	return len(bwe.WriteErrors) > 0
}

// writeEach writes the models one by one, ignoring duplicate keys (a
// document that someone else created); conflicts are found afterwards.
func (s *Store) writeEach(ctx context.Context, models []mongo.WriteModel) error {
	for _, m := range models {
		var err error
		switch m := m.(type) {
		case *mongo.InsertOneModel:
			_, err = s.carts.InsertOne(ctx, m.Document)
		case *mongo.ReplaceOneModel:
			_, err = s.carts.ReplaceOne(ctx, m.Filter, m.Replacement)
		}
		if err != nil && !mongo.IsDuplicateKeyError(err) {
			return translate(ctx, err)
		}
	}
	return nil
}

// conflicts reads back the written users' documents and returns those
// whose document is not at the version written, and the creates whose
// document this call did not insert (writeID tells): a document that was
// there before a create is a conflict even at the same version, since the
// projector must read it to tell which events it already reflects.
func (s *Store) conflicts(ctx context.Context, writes []projection.CartWrite, writeID string) ([]string, error) {
	ids := make([]string, len(writes))
	for i, w := range writes {
		ids[i] = w.Doc.UserID
	}
	now, err := s.read(ctx, ids, bson.D{{Key: "version", Value: 1}, {Key: "write_id", Value: 1}})
	if err != nil {
		return nil, fmt.Errorf("readmodel write carts: %w", err)
	}
	var out []string
	for _, w := range writes {
		d, ok := now[w.Doc.UserID]
		if !ok || d.Version != w.Doc.Version || w.Create && d.WriteID != writeID {
			out = append(out, w.Doc.UserID)
		}
	}
	return out, nil
}

// versions reads the version of each user's document.
func (s *Store) versions(ctx context.Context, userIDs []string) (map[string]int64, error) {
	docs, err := s.read(ctx, userIDs, bson.D{{Key: "version", Value: 1}})
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(docs))
	for id, d := range docs {
		out[id] = d.Version
	}
	return out, nil
}

// LoadCheckpoint implements projection.Store.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (_ *eventlog.Position, err error) {
	defer s.timed("read", time.Now(), &err)
	if s.lease != nil {
		if err := s.claimCheckpoint(ctx, name); err != nil {
			return nil, err
		}
	}
	var d fencedCheckpoint
	err = s.checkpoints.FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("readmodel load checkpoint %q: %w", name, translate(ctx, err))
	}
	if d.Commit == nil || d.Prepare == nil {
		return nil, nil // claimed by a fenced store (Fenced), never saved
	}
	if *d.Commit < 0 || *d.Prepare < 0 {
		return nil, fmt.Errorf("readmodel load checkpoint %q: negative position %d/%d", name, *d.Commit, *d.Prepare)
	}
	return &eventlog.Position{Commit: uint64(*d.Commit), Prepare: uint64(*d.Prepare)}, nil
}

// SaveCheckpoint implements projection.Store. The upsert's filter matches
// only a checkpoint at or before pos; when a checkpoint further on exists
// (another replica is ahead) the upsert's insert hits the duplicate _id and
// the stored checkpoint stays, which is what we want.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, pos eventlog.Position) (err error) {
	defer s.timed("write", time.Now(), &err)
	if s.lease != nil {
		return s.saveFencedCheckpoint(ctx, name, pos)
	}
	if pos.Commit > math.MaxInt64 || pos.Prepare > math.MaxInt64 {
		return fmt.Errorf("readmodel save checkpoint %q: position %v does not fit int64", name, pos)
	}
	c, p := int64(pos.Commit), int64(pos.Prepare)
	filter := bson.D{
		{Key: "_id", Value: name},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "commit", Value: bson.D{{Key: "$lt", Value: c}}}},
			bson.D{{Key: "commit", Value: c}, {Key: "prepare", Value: bson.D{{Key: "$lte", Value: p}}}},
		}},
	}
	doc := checkpointDoc{Name: name, Commit: c, Prepare: p, UpdatedAt: time.Now().UTC()}
	_, err = s.checkpoints.ReplaceOne(ctx, filter, doc, options.Replace().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("readmodel save checkpoint %q: %w", name, translate(ctx, err))
	}
	return nil
}

// DeleteCheckpoint forgets a projector's checkpoint, so that it starts from
// the beginning of the log (e.g. before a rebuild into an empty collection).
func (s *Store) DeleteCheckpoint(ctx context.Context, name string) error {
	if _, err := s.checkpoints.DeleteOne(ctx, bson.D{{Key: "_id", Value: name}}); err != nil {
		return fmt.Errorf("readmodel delete checkpoint %q: %w", name, translate(ctx, err))
	}
	return nil
}

// translate maps the driver's availability failures to cart.ErrUnavailable,
// keeping the driver's error in the message for the log. The caller's own
// cancellation or deadline is passed on as such.
func translate(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	var sse topology.ServerSelectionError
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.As(err, &sse) ||
		errors.Is(err, mongo.ErrClientDisconnected) {
		return fmt.Errorf("%w: %v", cart.ErrUnavailable, err)
	}
	return err
}

// timed tells Options.Observe of a call that started at start and ended
// with *err; called deferred, with the call's named error result.
func (s *Store) timed(op string, start time.Time, err *error) {
	if s.opts.Observe != nil {
		s.opts.Observe(op, time.Since(start), *err)
	}
}
