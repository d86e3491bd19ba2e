package standin

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
)

// serverVersion is what GetSupportedMethods reports. The client parses each
// of its three parts with Atoi, so it must stay purely numeric.
const serverVersion = "24.10.0"

// featuresService implements ServerFeatures. It lists only what the
// stand-in serves, so the client never enables BatchAppend or the
// persistent-subscription management paths against it.
type featuresService struct {
	serverfeatures.UnimplementedServerFeaturesServer
}

var _ serverfeatures.ServerFeaturesServer = (*featuresService)(nil)

var supportedMethods = &serverfeatures.SupportedMethods{
	EventStoreServerVersion: serverVersion,
	Methods: []*serverfeatures.SupportedMethod{
		{MethodName: "read", ServiceName: "event_store.client.streams.streams", Features: []string{"position", "events"}},
		{MethodName: "append", ServiceName: "event_store.client.streams.streams"},
		{MethodName: "delete", ServiceName: "event_store.client.streams.streams"},
		{MethodName: "tombstone", ServiceName: "event_store.client.streams.streams"},
		{MethodName: "read", ServiceName: "event_store.client.gossip.gossip"},
		{MethodName: "getsupportedmethods", ServiceName: "event_store.client.server_features.serverfeatures"},
	},
}

// GetSupportedMethods tells the client which server it talks to.
func (featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	return supportedMethods, nil
}

// gossipService implements Gossip for a single-node cluster, so that
// esdb+discover:// connection strings (and multi-host seeds) work: the one
// member is an alive Leader whose "HTTP" endpoint is the gRPC address, which
// is where the client connects after discovery.
type gossipService struct {
	gossip.UnimplementedGossipServer
	instance uuid.UUID
	host     string
	port     uint32
}

var _ gossip.GossipServer = (*gossipService)(nil)

// Read returns the cluster's single member.
func (g *gossipService) Read(context.Context, *shared.Empty) (*gossip.ClusterInfo, error) {
	return &gossip.ClusterInfo{Members: []*gossip.MemberInfo{{
		InstanceId: &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
			MostSignificantBits:  int64(binary.BigEndian.Uint64(g.instance[:8])),
			LeastSignificantBits: int64(binary.BigEndian.Uint64(g.instance[8:])),
		}}},
		TimeStamp:    ticks(time.Now()),
		State:        gossip.MemberInfo_Leader,
		IsAlive:      true,
		HttpEndPoint: &gossip.EndPoint{Address: g.host, Port: g.port},
	}}}, nil
}
