package e2e_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/commandsvc"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// loseResponses makes a client whose calls reach the server but whose
// responses are lost on the way back, as on a flaky mobile network.
func loseResponses(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
		return err
	}
	return status.Error(codes.Unavailable, "response lost (injected)")
}

// startCommandSvc starts one more command-svc on the same event store: a
// fresh process with nothing in memory, as after a restart.
func (e *env) startCommandSvc(opts ...grpc.DialOption) cartv1.CartCommandServiceClient {
	e.t.Helper()
	lis := listen(e.t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- commandsvc.Run(ctx, commandsvc.Config{ServerConfig: rpc.ServerConfig{Listener: lis, Security: e.security()},
			ESDBURL: e.esdb.ConnectionString(), Catalog: e.prices}, logger(e.t))
	}()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("command-svc: %v", err)
		}
	})
	waitServing(e.t, dial(e.t, lis.Addr().String()))
	return cartv1.NewCartCommandServiceClient(e.dial(lis.Addr().String(), opts...))
}

func (e *env) history(user string) []*cartv1.CartEvent {
	e.t.Helper()
	var (
		all   []*cartv1.CartEvent
		token string
	)
	for {
		resp, err := e.query.GetCartHistory(ctx(e.t), &cartv1.GetCartHistoryRequest{UserId: user, PageSize: 7, PageToken: token})
		if err != nil {
			e.t.Fatalf("GetCartHistory(%s): %v", user, err)
		}
		all = append(all, resp.GetEvents()...)
		if token = resp.GetNextPageToken(); token == "" {
			return all
		}
	}
}

func TestLostResponseRetryAppliesOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	lossy := e.startCommandSvc(grpc.WithUnaryInterceptor(loseResponses))
	id := uuid.NewString()
	req := &cartv1.AddItemRequest{UserId: "flaky", ProductId: "sku-1", Quantity: 1, UnitPrice: e.show("sku-1", eur(3, 0)), CommandId: id}

	if _, err := lossy.AddItem(ctx(t), req); status.Code(err) != codes.Unavailable {
		t.Fatalf("first attempt: %v, want the injected loss", err)
	}
	// The client retries on a healthy connection, then once more on a
	// command-svc that has just started (nothing in memory).
	first, err := e.cmd.AddItem(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.startCommandSvc().AddItem(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetVersion() != 0 || again.GetVersion() != 0 {
		t.Fatalf("retries answered versions %d and %d, want the original 0", first.GetVersion(), again.GetVersion())
	}
	if h := e.history("flaky"); len(h) != 1 || h[0].GetCommandId() != id {
		t.Fatalf("history = %v, want exactly one event for command %s", h, id)
	}
	if q := quantities(e.cartAt("flaky", 0)); q["sku-1"] != 1 {
		t.Fatalf("quantity = %d, want 1", q["sku-1"])
	}

	// The same ID with another payload is refused and writes nothing.
	other := proto.Clone(req).(*cartv1.AddItemRequest)
	other.Quantity = 2
	if _, err := e.cmd.AddItem(ctx(t), other); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("reused command_id: %v, want AlreadyExists", err)
	}
	if h := e.history("flaky"); len(h) != 1 {
		t.Fatalf("a refused command wrote: %d events", len(h))
	}
	// A checkout resent after a lost response gives the same checkout.
	coID := uuid.NewString()
	if _, err := lossy.CheckoutCart(ctx(t), &cartv1.CheckoutCartRequest{UserId: "flaky", CommandId: coID}); status.Code(err) != codes.Unavailable {
		t.Fatalf("checkout: %v", err)
	}
	co1, err := e.cmd.CheckoutCart(ctx(t), &cartv1.CheckoutCartRequest{UserId: "flaky", CommandId: coID})
	if err != nil {
		t.Fatal(err)
	}
	co2, err := e.cmd.CheckoutCart(ctx(t), &cartv1.CheckoutCartRequest{UserId: "flaky", CommandId: coID})
	if err != nil || !proto.Equal(co1, co2) || co1.GetVersion() != 1 || len(co1.GetItems()) != 1 {
		t.Fatalf("resent checkout = %v / %v, %v", co1, co2, err)
	}
}

func TestSameCommandRacingIsAppliedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.add("race", "sku-0", 1, eur(1, 0))
	req := &cartv1.AddItemRequest{UserId: "race", ProductId: "sku-1", Quantity: 1, UnitPrice: e.show("sku-1", eur(1, 0)), CommandId: uuid.NewString()}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		versions = map[int64]int{}
	)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.cmd.AddItem(ctx(t), req)
			if err != nil {
				t.Errorf("AddItem: %v", err)
				return
			}
			mu.Lock()
			versions[resp.GetVersion()]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(versions) != 1 || versions[1] != 5 {
		t.Fatalf("versions answered = %v, want version 1 five times", versions)
	}
	if h := e.history("race"); len(h) != 2 {
		t.Fatalf("history has %d events, want 2", len(h))
	}
}

func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := 0; i < 5; i++ {
		v := e.add("ryw", fmt.Sprintf("sku-%d", i), 1, eur(1, 0))
		resp, err := e.query.GetCart(ctx(t), &cartv1.GetCartRequest{UserId: "ryw", MinVersion: proto.Int64(v)})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetCart().GetVersion() < v || len(resp.GetCart().GetItems()) != i+1 {
			t.Fatalf("GetCart(min_version=%d) = %v", v, resp.GetCart())
		}
	}
	// A version that never comes: the server answers UNAVAILABLE before the
	// caller's deadline, telling it to retry.
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := e.query.GetCart(c, &cartv1.GetCartRequest{UserId: "ryw", MinVersion: proto.Int64(99)})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("unreachable min_version: %v, want Unavailable", err)
	}
}

func TestAuditTrailAndTimeTravel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A backend service "alice" acting for user tt, with the audit headers
	// (an x-principal it sends is ignored: the token says who it is).
	c := metadata.AppendToOutgoingContext(e.as("alice", auth.ScopeAny), "x-principal", "mallory", "x-correlation-id", "corr-1", "x-causation-id", "cause-1")
	var versions []int64
	// 50 events of every kind.
	for i := 0; len(versions) < 50; i++ {
		p := fmt.Sprintf("sku-%d", i%3)
		var (
			v   int64
			err error
		)
		switch i % 6 {
		case 0, 1, 2:
			var r *cartv1.AddItemResponse
			r, err = e.cmd.AddItem(c, &cartv1.AddItemRequest{UserId: "tt", ProductId: p, Quantity: 1, UnitPrice: e.show(p, eur(int64(i), 0)), Reason: fmt.Sprint("step ", i)})
			v = r.GetVersion()
		case 3:
			var r *cartv1.ChangeItemQuantityResponse
			r, err = e.cmd.ChangeItemQuantity(c, &cartv1.ChangeItemQuantityRequest{UserId: "tt", ProductId: "sku-0", Quantity: int32(10 + i)})
			v = r.GetVersion()
		case 4:
			var r *cartv1.RemoveItemResponse
			r, err = e.cmd.RemoveItem(c, &cartv1.RemoveItemRequest{UserId: "tt", ProductId: "sku-1"})
			v = r.GetVersion()
		case 5:
			if i%12 == 5 {
				var r *cartv1.CheckoutCartResponse
				r, err = e.cmd.CheckoutCart(c, &cartv1.CheckoutCartRequest{UserId: "tt"})
				v = r.GetVersion()
			} else {
				var r *cartv1.ClearCartResponse
				r, err = e.cmd.ClearCart(c, &cartv1.ClearCartRequest{UserId: "tt"})
				v = r.GetVersion()
			}
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if v != int64(len(versions)) {
			t.Fatalf("step %d: version %d, want %d", i, v, len(versions))
		}
		versions = append(versions, v)
		// The read model at v is the reference for the past state at v.
		cur := e.cartAt("tt", v)
		cur.UpdateTime = nil
		past := e.replayed("tt", v)
		past.UpdateTime = nil
		if !proto.Equal(cur, past) {
			t.Fatalf("version %d: GetCartAsOf\n%v\n!= the cart then\n%v", v, past, cur)
		}
	}

	h := e.history("tt")
	if len(h) != 50 {
		t.Fatalf("history has %d events, want 50", len(h))
	}
	for i, ev := range h {
		if ev.GetVersion() != int64(i) || ev.GetPrincipal() != "alice" || ev.GetCorrelationId() != "corr-1" || ev.GetCausationId() != "cause-1" || ev.GetCommandId() == "" || ev.GetEventId() == "" || ev.GetData() == nil {
			t.Fatalf("history[%d] = %v", i, ev)
		}
	}
	if h[0].GetItemAdded().GetProductId() != "sku-0" || h[0].GetReason() != "step 0" || h[0].GetEventType() != "ItemAdded" {
		t.Fatalf("history[0] = %v", h[0])
	}

	// as_of_time at each event's recorded time gives the cart right after
	// the last event recorded at or before that time.
	for i, ev := range h {
		at := ev.GetTime().AsTime()
		want := int64(i)
		for want+1 < int64(len(h)) && !h[want+1].GetTime().AsTime().After(at) {
			want++ // events recorded within the same tick
		}
		byTime, err := e.query.GetCartAsOf(ctx(t), &cartv1.GetCartAsOfRequest{UserId: "tt", Point: &cartv1.GetCartAsOfRequest_AsOfTime{AsOfTime: timestamppb.New(at)}})
		if err != nil {
			t.Fatal(err)
		}
		if byTime.GetCart().GetVersion() != want || !proto.Equal(byTime.GetCart(), e.replayed("tt", want)) {
			t.Fatalf("as of %v: %v, want the cart at version %d", at, byTime.GetCart(), want)
		}
	}
	before, err := e.query.GetCartAsOf(ctx(t), &cartv1.GetCartAsOfRequest{UserId: "tt", Point: &cartv1.GetCartAsOfRequest_AsOfTime{AsOfTime: timestamppb.New(h[0].GetTime().AsTime().Add(-time.Second))}})
	if err != nil || before.GetCart().GetVersion() != -1 || len(before.GetCart().GetItems()) != 0 {
		t.Fatalf("before the first event: %v, %v", before, err)
	}
	_, err = e.query.GetCartAsOf(ctx(t), &cartv1.GetCartAsOfRequest{UserId: "tt", Point: &cartv1.GetCartAsOfRequest_AsOfVersion{AsOfVersion: 50}})
	if status.Code(err) != codes.OutOfRange {
		t.Fatalf("version past the end: %v, want OutOfRange", err)
	}
}
