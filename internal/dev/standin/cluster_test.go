package standin

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestConnectionStrings(t *testing.T) {
	t.Parallel()
	s := Start(t)
	tests := []struct {
		name string
		conn string
	}{
		{"single node", s.ConnectionString()},
		{"discover", "esdb+discover://" + s.Addr() + "?tls=false"},
		{"gossip seeds", "esdb://" + s.Addr() + "," + s.Addr() + "?tls=false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClientFor(t, tt.conn)
			stream := "cart-conn-" + strings.ReplaceAll(tt.name, " ", "-")
			mustAppend(t, c, stream, esdb.NoStream{}, jsonEvent("E", `{}`))
			if got, err := readStream(t, c, stream, esdb.ReadStreamOptions{}, 10); err != nil || len(got) != 1 {
				t.Fatalf("read = %d events, %v", len(got), err)
			}
		})
	}
	if want := "esdb://" + s.Addr() + "?tls=false"; s.ConnectionString() != want || !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr %q, ConnectionString %q", s.Addr(), s.ConnectionString())
	}
}

func TestGossipAndFeatures(t *testing.T) {
	t.Parallel()
	s := Start(t)
	conn := rawConn(t, s)

	info, err := gossip.NewGossipClient(conn).Read(testCtx(t), &shared.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(s.Addr(), ":")
	if len(info.Members) != 1 {
		t.Fatalf("members = %v", info.Members)
	}
	m := info.Members[0]
	if m.State != gossip.MemberInfo_Leader || !m.IsAlive || m.HttpEndPoint.GetAddress() != "127.0.0.1" ||
		strconv.Itoa(int(m.HttpEndPoint.GetPort())) != port || m.InstanceId == nil {
		t.Fatalf("member = %v, want an alive leader at %s", m, s.Addr())
	}

	methods, err := serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(testCtx(t), &shared.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(methods.EventStoreServerVersion, ".")
	if len(parts) != 3 {
		t.Fatalf("version %q, want a.b.c", methods.EventStoreServerVersion)
	}
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil {
			t.Fatalf("version %q is not numeric: %v", methods.EventStoreServerVersion, err)
		}
	}
	for _, m := range methods.Methods {
		if m.MethodName == "batchappend" || strings.Contains(m.ServiceName, "persistent") {
			t.Errorf("advertises %s/%s, which the stand-in does not serve", m.ServiceName, m.MethodName)
		}
	}

	h, err := healthpb.NewHealthClient(conn).Check(testCtx(t), &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", h, err)
	}
}

func TestUnimplementedServices(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	err := c.CreatePersistentSubscription(testCtx(t), "cart-ps", "group", esdb.PersistentStreamSubscriptionOptions{})
	if code, _ := errorCode(err); code != esdb.ErrorCodeUnsupportedFeature {
		t.Fatalf("create persistent subscription: %v, want ErrorCodeUnsupportedFeature", err)
	}
}

// The client pings every 10 s even when idle; anything stricter than
// "5 s, without streams" makes the server answer too_many_pings and the
// client drop its subscriptions. (grpc-go clients cannot ping faster than
// every 10 s, so a behavioural test would take tens of seconds.)
func TestKeepalivePolicy(t *testing.T) {
	t.Parallel()
	if keepalivePolicy.MinTime != 5*time.Second || !keepalivePolicy.PermitWithoutStream {
		t.Fatalf("keepalive enforcement = %+v, want MinTime 5s and PermitWithoutStream", keepalivePolicy)
	}
}
