package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readmodel"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// streamReport is what a RebuildReadModel or VerifyReadModel stream sent.
type streamReport[R any] struct {
	progress []*cartv1.Progress
	result   R
}

// recvAll reads a server stream to its end: progress messages, then exactly
// one result as the last message.
func recvAll[M any, R any](t *testing.T, recv func() (M, error), split func(M) (*cartv1.Progress, R, bool)) (streamReport[R], error) {
	t.Helper()
	var out streamReport[R]
	gotResult := false
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			if !gotResult {
				t.Fatal("stream ended without a result")
			}
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if gotResult {
			t.Fatal("a message after the result")
		}
		p, r, isResult := split(m)
		if isResult {
			out.result, gotResult = r, true
		} else {
			out.progress = append(out.progress, p)
		}
	}
}

func (e *env) verify(c context.Context) (streamReport[*cartv1.VerifyResult], error) {
	e.t.Helper()
	stream, err := e.admin.VerifyReadModel(c, &cartv1.VerifyReadModelRequest{})
	if err != nil {
		return streamReport[*cartv1.VerifyResult]{}, err
	}
	return recvAll(e.t, stream.Recv, func(m *cartv1.VerifyReadModelResponse) (*cartv1.Progress, *cartv1.VerifyResult, bool) {
		return m.GetProgress(), m.GetResult(), m.GetResult() != nil
	})
}

// writer adds items to the users' carts, round robin, until stopped, and
// remembers each user's last version.
type writer struct {
	e    *env
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	last map[string]int64
}

func (e *env) startWriter(users ...string) *writer {
	w := &writer{e: e, stop: make(chan struct{}), done: make(chan struct{}), last: map[string]int64{}}
	go func() {
		defer close(w.done)
		// Paced, so that the writes overlap the whole operation without
		// starving the other tests of CPU.
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			u := users[i%len(users)]
			product := fmt.Sprintf("sku-%d", i%4)
			resp, err := e.cmd.AddItem(ctx(e.t), &cartv1.AddItemRequest{
				UserId: u, ProductId: product, Quantity: 1, UnitPrice: e.show(product, eur(int64(1+i%3), 0)),
			})
			if err != nil {
				e.t.Errorf("AddItem(%s): %v", u, err)
				return
			}
			w.mu.Lock()
			w.last[u] = max(w.last[u], resp.GetVersion())
			w.mu.Unlock()
		}
	}()
	return w
}

// finish stops the writer and returns each user's last version.
func (w *writer) finish() map[string]int64 {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// reader reads the users' carts in a loop until stopped and checks that
// GetCart keeps answering and that no cart ever goes back in versions: a
// half-built collection would show a cart older than one already seen.
type reader struct {
	stop  chan struct{}
	done  chan struct{}
	reads int
}

func (e *env) startReader(users ...string) *reader {
	r := &reader{stop: make(chan struct{}), done: make(chan struct{})}
	seen := map[string]int64{}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
			u := users[i%len(users)]
			resp, err := e.query.GetCart(ctx(e.t), &cartv1.GetCartRequest{UserId: u})
			if err != nil {
				e.t.Errorf("GetCart(%s) during the operation: %v", u, err)
				return
			}
			v := resp.GetCart().GetVersion()
			if prev, ok := seen[u]; ok && v < prev {
				e.t.Errorf("GetCart(%s) went back from version %d to %d", u, prev, v)
				return
			}
			seen[u] = v
			r.reads++
		}
	}()
	return r
}

func (r *reader) finish() int {
	close(r.stop)
	<-r.done
	return r.reads
}

// seed gives each user a few events.
func (e *env) seed(users ...string) map[string]int64 {
	e.t.Helper()
	last := map[string]int64{}
	for i := 0; i < 3; i++ {
		for _, u := range users {
			last[u] = e.add(u, fmt.Sprintf("sku-%d", i), int32(i+1), eur(2, 500_000_000))
		}
	}
	return last
}

// assertMatchesReplay checks every user's read model cart against a fresh
// replay of the log.
func (e *env) assertMatchesReplay(last map[string]int64) {
	e.t.Helper()
	for u, v := range last {
		if live, fresh := e.cartAt(u, v), e.replayed(u, v); !proto.Equal(live, fresh) {
			e.t.Errorf("%s: read model\n%v\n!= replay\n%v", u, live, fresh)
		}
	}
}

func wantAdminBusy(t *testing.T, err error) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition {
		t.Fatalf("second operation: %v, want FAILED_PRECONDITION", err)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == "ADMIN_OPERATION_RUNNING" {
			return
		}
	}
	t.Fatalf("second operation: %v without ErrorInfo ADMIN_OPERATION_RUNNING", st.Details())
}

func TestRebuildUnderConcurrentWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	e := newEnv(t)
	users := []string{"ann", "ben", "cat", "dan"}
	seeded := e.seed(users...)
	for u, v := range seeded {
		e.cartAt(u, v)
	}

	w := e.startWriter(users...)
	r := e.startReader(users...)
	stream, err := e.admin.RebuildReadModel(ctx(t), &cartv1.RebuildReadModelRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.GetProgress() == nil {
		t.Fatalf("first message = %v, %v; want progress", first, err)
	}
	if first.GetProgress().GetTargetCommitPosition() == 0 {
		t.Errorf("progress without a target: %v", first.GetProgress())
	}
	// The rebuild is running: a second operation is refused.
	_, err = e.verify(ctx(t))
	wantAdminBusy(t, err)

	rep, err := recvAll(t, stream.Recv, func(m *cartv1.RebuildReadModelResponse) (*cartv1.Progress, *cartv1.RebuildResult, bool) {
		return m.GetProgress(), m.GetResult(), m.GetResult() != nil
	})
	if err != nil {
		t.Fatalf("RebuildReadModel: %v", err)
	}
	reads := r.finish()
	last := w.finish()
	if t.Failed() {
		return
	}
	res := rep.result
	if !strings.HasPrefix(res.GetCollection(), "carts_") || res.GetCarts() != int64(len(users)) ||
		res.GetEventsProcessed() < int64(3*len(users)) || res.GetDuration().AsDuration() <= 0 {
		t.Errorf("result = %v; want a new carts_ collection with %d carts", res, len(users))
	}
	if n := len(rep.progress); n == 0 || rep.progress[n-1].GetEventsProcessed() != res.GetEventsProcessed() {
		t.Errorf("progress %v does not end at the result's %d events", rep.progress, res.GetEventsProcessed())
	}
	if reads == 0 {
		t.Error("no GetCart answered during the rebuild")
	}
	e.assertMatchesReplay(last)

	// The switch survives a restart, and the projector goes on in the new collection.
	e.stopQuery()
	e.restartQuery()
	for u := range last {
		last[u] = e.add(u, "after-restart", 1, eur(1, 0))
	}
	e.assertMatchesReplay(last)
	rm, err := readmodel.ConnectWith(ctx(t), e.mongoURI, readmodel.FerretDBCompat())
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close(ctx(t))
	if active, err := rm.Catalog(e.mongoDB).Active(ctx(t)); err != nil || active != res.GetCollection() {
		t.Errorf("active collection = %q, %v; want %q", active, err, res.GetCollection())
	}
}

// corrupt changes a line's quantity of the user's live document behind the
// projector's back, keeping its version.
func (e *env) corrupt(user string, qty int) {
	e.t.Helper()
	rm, err := readmodel.ConnectWith(ctx(e.t), e.mongoURI, readmodel.FerretDBCompat())
	if err != nil {
		e.t.Fatal(err)
	}
	defer rm.Close(ctx(e.t))
	cat := rm.Catalog(e.mongoDB)
	active, err := cat.Active(ctx(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	store := cat.Store(active)
	doc, ok, err := store.GetCart(ctx(e.t), user)
	if err != nil || !ok || len(doc.Cart.Items) == 0 {
		e.t.Fatalf("GetCart(%s) = %+v, %v, %v", user, doc, ok, err)
	}
	doc.Cart = doc.Cart.Clone()
	doc.Cart.Items[0].Quantity = qty
	conflicts, err := store.WriteCarts(ctx(e.t), []projection.CartWrite{{Doc: doc, ExpectedVersion: doc.Version}})
	if err != nil || len(conflicts) > 0 {
		e.t.Fatalf("corrupting %s: %v, conflicts %v", user, err, conflicts)
	}
}

func TestVerifyReportsCorruptedCart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	e := newEnv(t)
	busy := []string{"wendy", "xavier", "yann"}
	last := e.seed(append([]string{"victim"}, busy...)...)
	for u, v := range last {
		e.cartAt(u, v)
	}

	clean, err := e.verify(ctx(t))
	if err != nil {
		t.Fatalf("VerifyReadModel: %v", err)
	}
	if res := clean.result; res.GetCartsChecked() != 4 || len(res.GetDifferences()) != 0 || len(clean.progress) == 0 {
		t.Fatalf("verify of a sound read model = %v with %d progress messages; want 4 carts, no differences", res, len(clean.progress))
	}

	e.corrupt("victim", 42)
	w := e.startWriter(busy...) // concurrent writes must not cause false reports
	rep, err := e.verify(ctx(t))
	w.finish()
	if err != nil {
		t.Fatalf("VerifyReadModel: %v", err)
	}
	diffs := rep.result.GetDifferences()
	if len(diffs) != 1 || diffs[0].GetUserId() != "victim" ||
		!strings.Contains(diffs[0].GetSummary(), "item sku-0 quantity: live 42, replay 1") ||
		diffs[0].GetLiveVersion() != last["victim"] || diffs[0].GetReplayVersion() != last["victim"] {
		t.Fatalf("differences = %v; want victim's sku-0 quantity only", diffs)
	}
	if rep.result.GetCartsChecked() != 4 {
		t.Errorf("carts checked = %d, want 4", rep.result.GetCartsChecked())
	}
}

// appendRaw writes an event straight to the user's stream with the real
// EventStoreDB client, as a buggy or newer writer would.
func (e *env) appendRaw(user, eventType, data string) {
	e.t.Helper()
	cfg, err := esdb.ParseConnectionString(e.esdb.ConnectionString())
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	meta, err := cart.MarshalMetadata(cart.Metadata{CommandID: uuid.NewString(), CommandType: "Test", Time: time.Now().UTC()})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.AppendToStream(ctx(e.t), "cart-"+user, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}},
		esdb.EventData{EventID: uuid.New(), EventType: eventType, ContentType: esdb.ContentTypeJson, Data: []byte(data), Metadata: meta}); err != nil {
		e.t.Fatalf("append %s to cart-%s: %v", eventType, user, err)
	}
}

// waitStale polls GetCart until the user's cart is flagged stale.
func (e *env) waitStale(user string) *cartv1.Cart {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := e.query.GetCart(ctx(e.t), &cartv1.GetCartRequest{UserId: user})
		if err != nil {
			e.t.Fatal(err)
		}
		if resp.GetCart().GetStale() {
			return resp.GetCart()
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s never flagged stale: %v", user, resp.GetCart())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPoisonEventParksAndOtherCartsKeepProjecting(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	e := newEnv(t)
	bobV := e.add("bob", "sku-1", 2, eur(3, 0))
	e.add("alice", "sku-1", 1, eur(3, 0))
	e.appendRaw("bob", "CouponApplied", `{"code":"SPRING"}`)
	e.appendRaw("bob", cart.TypeItemAdded, `{"product_id":"sku-2","quantity":1,"unit_price":{"currency_code":"EUR","units":1}}`)

	// Other carts keep projecting.
	aliceV := e.add("alice", "sku-2", 1, eur(4, 0))
	if q := quantities(e.cartAt("alice", aliceV)); q["sku-2"] != 1 {
		t.Fatalf("alice = %v", q)
	}
	stale := e.waitStale("bob")
	if stale.GetVersion() != bobV || quantities(stale)["sku-1"] != 2 {
		t.Fatalf("bob = %v; want stale at version %d with sku-1 x2", stale, bobV)
	}
	if _, err := e.query.GetCart(ctx(t), &cartv1.GetCartRequest{UserId: "bob", MinVersion: proto.Int64(bobV + 1)}); status.Code(err) != codes.Unavailable {
		t.Fatalf("GetCart(bob, min past the poison) = %v; want UNAVAILABLE at once", err)
	}

	// Both of bob's later events are parked, in order, with their reasons.
	// The projector parks after it has stored (and announced) the batch's
	// documents, so the list may trail alice's visible version briefly.
	var parked []*cartv1.ParkedEvent
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		parked = nil
		token := ""
		for pages := 0; ; pages++ {
			resp, err := e.admin.ListParkedEvents(ctx(t), &cartv1.ListParkedEventsRequest{PageSize: 1, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			parked = append(parked, resp.GetParkedEvents()...)
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
			if pages > 3 {
				t.Fatal("paging does not end")
			}
		}
		if len(parked) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(parked) != 2 {
		t.Fatalf("parked = %v; want bob's two events", parked)
	}
	p0, p1 := parked[0], parked[1]
	if p0.GetUserId() != "bob" || p0.GetStreamId() != "cart-bob" || p0.GetVersion() != bobV+1 || p0.GetEventType() != "CouponApplied" ||
		!strings.Contains(p0.GetError(), "unknown event type") || p0.GetEventId() == "" || p0.GetParkTime() == nil {
		t.Errorf("first parked = %v", p0)
	}
	if p1.GetVersion() != bobV+2 || p1.GetEventType() != cart.TypeItemAdded || !strings.Contains(p1.GetError(), "gap") {
		t.Errorf("second parked = %v", p1)
	}
	if resp, err := e.admin.ListParkedEvents(ctx(t), &cartv1.ListParkedEventsRequest{UserId: "alice"}); err != nil || len(resp.GetParkedEvents()) != 0 {
		t.Errorf("alice's parked = %v, %v; want none", resp, err)
	}

	// The code still does not know the type: the replay fails again.
	rp, err := e.admin.ReplayParkedEvents(ctx(t), &cartv1.ReplayParkedEventsRequest{UserId: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if rp.GetReplayed() != 0 || len(rp.GetStillParked()) != 2 || rp.GetStillParked()[0].GetReplayAttempts() != 1 {
		t.Fatalf("replay = %v; want nothing replayed, both still parked, 1 attempt", rp)
	}
	listed, err := e.admin.ListParkedEvents(ctx(t), &cartv1.ListParkedEventsRequest{UserId: "bob"})
	if err != nil || len(listed.GetParkedEvents()) != 2 || listed.GetParkedEvents()[0].GetReplayAttempts() != 1 {
		t.Fatalf("after the replay: %v, %v", listed, err)
	}
	if c := e.waitStale("bob"); c.GetVersion() != bobV {
		t.Fatalf("bob after the failed replay = %v", c)
	}

	// A poisoned cart is not a difference: a replay gets stuck the same way.
	rep, err := e.verify(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.result.GetDifferences(); len(d) != 0 {
		t.Errorf("verify reports %v", d)
	}

	for name, req := range map[string]*cartv1.ListParkedEventsRequest{
		"negative page size": {PageSize: -1},
		"bad token":          {PageToken: "nope"},
		"bad user":           {UserId: "bob smith"},
	} {
		if _, err := e.admin.ListParkedEvents(ctx(t), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", name, err)
		}
	}
}
