package adminapi_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/admin"
	"github.com/acme/cart/internal/api/adminapi"
	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readside"
	"github.com/acme/cart/internal/testing/grpctest"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// fakeLot is a parking lot in memory; a call to ListParked can be held.
type fakeLot struct {
	mu     sync.Mutex
	events []projection.ParkedEvent
	// hold, if set, makes the next ListParked signal entered and wait for it to close.
	hold, entered chan struct{}
}

func (f *fakeLot) Park(context.Context, eventlog.Event, error) error { return nil }

func (f *fakeLot) ListParked(ctx context.Context, userID, after string, limit int) ([]projection.ParkedEvent, error) {
	f.mu.Lock()
	hold, entered := f.hold, f.entered
	f.hold = nil
	evs := slices.Clone(f.events)
	f.mu.Unlock()
	if hold != nil {
		close(entered)
		<-hold
	}
	var out []projection.ParkedEvent
	for _, p := range evs {
		if (userID == "" || p.Event.UserID == userID) && p.Key > after && (limit <= 0 || len(out) < limit) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (f *fakeLot) DeleteParked(context.Context, ...string) error { return nil }
func (f *fakeLot) ReplayFailed(context.Context, string, string) error {
	return errors.New("not in this fake")
}

// downCatalog is a catalog whose MongoDB cannot be reached, so the read
// model never opens.
type downCatalog struct{}

func (downCatalog) Active(context.Context) (string, error)  { return "", cart.ErrUnavailable }
func (downCatalog) SetActive(context.Context, string) error { return cart.ErrUnavailable }
func (downCatalog) Drop(context.Context, string) error      { return cart.ErrUnavailable }

type noEvents struct{}

func (noEvents) HeadPosition(context.Context) (eventlog.Position, error) {
	return eventlog.Position{}, nil
}
func (noEvents) ReadStream(context.Context, string, int64, int) ([]eventlog.Event, error) {
	return nil, nil
}
func (noEvents) Subscribe(context.Context, *eventlog.Position) (eventlog.Subscription, error) {
	return nil, cart.ErrUnavailable
}

func startAdminServer(t *testing.T, lot *fakeLot) cartv1.CartAdminServiceClient {
	t.Helper()
	live, err := readside.New(readside.Config{
		Catalog: downCatalog{}, Open: func(string) readside.CartStore { return nil },
		Projection: projection.Config{Source: noEvents{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ops, err := admin.New(admin.Config{Live: live, Parking: lot, Events: noEvents{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ops.Close)
	srv, _ := rpc.NewServer(slog.New(slog.DiscardHandler), rpc.Security{Auth: auth.NewInsecure(slog.New(slog.DiscardHandler)), Reflection: true})
	cartv1.RegisterCartAdminServiceServer(srv, adminapi.New(ops, nil))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cartv1.NewCartAdminServiceClient(conn)
}

func parked(user string, rev int64, key string) projection.ParkedEvent {
	return projection.ParkedEvent{
		Key: key,
		Event: eventlog.Event{StreamID: "cart-" + user, UserID: user, Revision: rev, EventID: "id-" + key,
			Type: "CouponApplied", Position: eventlog.Position{Commit: 1, Prepare: 1}},
		Error: "decode CouponApplied event: unknown event type", ParkedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		ReplayAttempts: 3,
	}
}

func TestListParkedEventsRPC(t *testing.T) {
	t.Parallel()
	lot := &fakeLot{events: []projection.ParkedEvent{parked("bob", 4, "k1"), parked("ann", 1, "k2"), parked("bob", 5, "k3")}}
	client := startAdminServer(t, lot)

	first, err := client.ListParkedEvents(grpctest.Context(t), &cartv1.ListParkedEventsRequest{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.GetParkedEvents()) != 2 || first.GetNextPageToken() == "" {
		t.Fatalf("first page = %v", first)
	}
	got := first.GetParkedEvents()[0]
	if got.GetUserId() != "bob" || got.GetStreamId() != "cart-bob" || got.GetVersion() != 4 || got.GetEventType() != "CouponApplied" ||
		got.GetEventId() != "id-k1" || got.GetError() != "decode CouponApplied event: unknown event type" ||
		!got.GetParkTime().AsTime().Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || got.GetReplayAttempts() != 3 {
		t.Errorf("first parked event = %v", got)
	}
	second, err := client.ListParkedEvents(grpctest.Context(t), &cartv1.ListParkedEventsRequest{PageSize: 2, PageToken: first.GetNextPageToken()})
	if err != nil || len(second.GetParkedEvents()) != 1 || second.GetNextPageToken() != "" || second.GetParkedEvents()[0].GetVersion() != 5 {
		t.Fatalf("second page = %v, %v", second, err)
	}

	tests := []struct {
		name      string
		req       *cartv1.ListParkedEventsRequest
		wantField string
	}{
		{"negative page size", &cartv1.ListParkedEventsRequest{PageSize: -1}, "page_size"},
		{"bad user", &cartv1.ListParkedEventsRequest{UserId: "bob smith"}, "user_id"},
		{"token of another filter", &cartv1.ListParkedEventsRequest{UserId: "ann", PageToken: first.GetNextPageToken()}, "page_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := client.ListParkedEvents(grpctest.Context(t), tt.req)
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("%v, want INVALID_ARGUMENT", err)
			}
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 && br.GetFieldViolations()[0].GetField() == tt.wantField {
					return
				}
			}
			t.Fatalf("details %v lack a violation of %s", st.Details(), tt.wantField)
		})
	}
}

func TestAdminOperationsOneAtATimeRPC(t *testing.T) {
	t.Parallel()
	lot := &fakeLot{hold: make(chan struct{}), entered: make(chan struct{})}
	client := startAdminServer(t, lot)
	hold := lot.hold

	replayed := make(chan error, 1)
	go func() {
		_, err := client.ReplayParkedEvents(grpctest.Context(t), &cartv1.ReplayParkedEventsRequest{})
		replayed <- err
	}()
	<-lot.entered // the replay holds the operations lock

	stream, err := client.RebuildReadModel(grpctest.Context(t), &cartv1.RebuildReadModelRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	st := status.Convert(err)
	var reason string
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			reason = info.GetReason()
		}
	}
	if st.Code() != codes.FailedPrecondition || reason != "ADMIN_OPERATION_RUNNING" {
		t.Fatalf("rebuild during a replay = %v (reason %q); want FAILED_PRECONDITION ADMIN_OPERATION_RUNNING", err, reason)
	}
	close(hold)
	if err := <-replayed; err != nil {
		t.Fatalf("the replay of an empty lot = %v", err)
	}
}

func TestAdminRPCsWhileTheReadModelIsDown(t *testing.T) {
	t.Parallel()
	client := startAdminServer(t, &fakeLot{events: []projection.ParkedEvent{parked("bob", 4, "k1")}})
	_, err := client.ReplayParkedEvents(grpctest.Context(t), &cartv1.ReplayParkedEventsRequest{UserId: "bob"})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("replay = %v, want UNAVAILABLE", err)
	}
	if _, err := client.ReplayParkedEvents(grpctest.Context(t), &cartv1.ReplayParkedEventsRequest{UserId: "bad user"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("replay for a bad user ID = %v, want INVALID_ARGUMENT", err)
	}
	for name, open := range map[string]func() (interface{ Recv() (any, error) }, error){
		"rebuild": func() (interface{ Recv() (any, error) }, error) {
			s, err := client.RebuildReadModel(grpctest.Context(t), &cartv1.RebuildReadModelRequest{})
			return recvAny[*cartv1.RebuildReadModelResponse]{s}, err
		},
		"verify": func() (interface{ Recv() (any, error) }, error) {
			s, err := client.VerifyReadModel(grpctest.Context(t), &cartv1.VerifyReadModelRequest{})
			return recvAny[*cartv1.VerifyReadModelResponse]{s}, err
		},
	} {
		s, err := open()
		if err == nil {
			for {
				if _, err = s.Recv(); err != nil {
					break
				}
			}
		}
		if errors.Is(err, io.EOF) || status.Code(err) != codes.Unavailable {
			t.Errorf("%s = %v, want UNAVAILABLE", name, err)
		}
	}
}

// recvAny adapts a typed stream to one Recv signature.
type recvAny[M any] struct {
	s interface{ Recv() (M, error) }
}

func (r recvAny[M]) Recv() (any, error) { return r.s.Recv() }
