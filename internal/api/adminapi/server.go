package adminapi

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/acme/cart/internal/admin"
	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/projection"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// Server serves cart.v1.CartAdminService on top of admin.Service. It
// is registered on its own gRPC server and address, off by default, so that
// operators' calls never share a port with the public query API.
type Server struct {
	cartv1.UnimplementedCartAdminServiceServer
	ops *admin.Service
	log *slog.Logger
}

var _ cartv1.CartAdminServiceServer = (*Server)(nil)

// New returns the admin API over ops; log receives the internal
// errors that callers only see as a generic message.
func New(ops *admin.Service, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{ops: ops, log: log}
}

// RebuildReadModel implements cartv1.CartAdminServiceServer: progress
// messages while the new read model is built, then the result. Cancelling
// the call before the switch abandons the rebuild and keeps the current
// read model.
func (s *Server) RebuildReadModel(_ *cartv1.RebuildReadModelRequest, stream grpc.ServerStreamingServer[cartv1.RebuildReadModelResponse]) error {
	ctx := stream.Context()
	if err := s.operator(ctx); err != nil {
		return err
	}
	res, err := s.ops.Rebuild(ctx, func(p admin.Progress) {
		// A failed send means the caller is gone; the context ends the rebuild.
		_ = stream.Send(&cartv1.RebuildReadModelResponse{Report: &cartv1.RebuildReadModelResponse_Progress{Progress: progressToProto(p)}})
	})
	if err != nil {
		return rpc.ToStatus(ctx, s.log, err, adminErrors)
	}
	return stream.Send(&cartv1.RebuildReadModelResponse{Report: &cartv1.RebuildReadModelResponse_Result{Result: &cartv1.RebuildResult{
		Collection:      res.Collection,
		Carts:           res.Carts,
		EventsProcessed: res.EventsProcessed,
		Duration:        durationpb.New(res.Duration),
	}}})
}

// VerifyReadModel implements cartv1.CartAdminServiceServer: progress
// messages while the log is replayed, then every cart that differs.
func (s *Server) VerifyReadModel(_ *cartv1.VerifyReadModelRequest, stream grpc.ServerStreamingServer[cartv1.VerifyReadModelResponse]) error {
	ctx := stream.Context()
	if err := s.operator(ctx); err != nil {
		return err
	}
	res, err := s.ops.Verify(ctx, func(p admin.Progress) {
		_ = stream.Send(&cartv1.VerifyReadModelResponse{Report: &cartv1.VerifyReadModelResponse_Progress{Progress: progressToProto(p)}})
	})
	if err != nil {
		return rpc.ToStatus(ctx, s.log, err, adminErrors)
	}
	out := &cartv1.VerifyResult{CartsChecked: res.CartsChecked}
	for _, d := range res.Differences {
		out.Differences = append(out.Differences, &cartv1.CartDifference{
			UserId: d.UserID, Summary: d.Summary, LiveVersion: d.LiveVersion, ReplayVersion: d.ReplayVersion,
		})
	}
	return stream.Send(&cartv1.VerifyReadModelResponse{Report: &cartv1.VerifyReadModelResponse_Result{Result: out}})
}

// ListParkedEvents implements cartv1.CartAdminServiceServer.
func (s *Server) ListParkedEvents(ctx context.Context, req *cartv1.ListParkedEventsRequest) (*cartv1.ListParkedEventsResponse, error) {
	if err := s.operator(ctx); err != nil {
		return nil, err
	}
	if err := validateOptionalUser(req.GetUserId()); err != nil {
		return nil, rpc.ToStatus(ctx, s.log, err, adminErrors)
	}
	page, err := s.ops.ListParked(ctx, req.GetUserId(), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, rpc.ToStatus(ctx, s.log, err, adminErrors)
	}
	out := &cartv1.ListParkedEventsResponse{NextPageToken: page.NextPageToken}
	for _, p := range page.Events {
		out.ParkedEvents = append(out.ParkedEvents, parkedToProto(p))
	}
	return out, nil
}

// ReplayParkedEvents implements cartv1.CartAdminServiceServer.
func (s *Server) ReplayParkedEvents(ctx context.Context, req *cartv1.ReplayParkedEventsRequest) (*cartv1.ReplayParkedEventsResponse, error) {
	if err := s.operator(ctx); err != nil {
		return nil, err
	}
	if err := validateOptionalUser(req.GetUserId()); err != nil {
		return nil, rpc.ToStatus(ctx, s.log, err, adminErrors)
	}
	res, err := s.ops.ReplayParked(ctx, req.GetUserId())
	if err != nil {
		return nil, rpc.ToStatus(ctx, s.log, err, adminErrors)
	}
	out := &cartv1.ReplayParkedEventsResponse{Replayed: int32(res.Replayed)}
	for _, p := range res.StillParked {
		out.StillParked = append(out.StillParked, parkedToProto(p))
	}
	return out, nil
}

// validateOptionalUser checks a user_id filter, where empty means all users.
func validateOptionalUser(userID string) error {
	if userID == "" {
		return nil
	}
	if v := cart.ValidateID("user_id", userID); len(v) > 0 {
		return &cart.ValidationError{Violations: v}
	}
	return nil
}

func progressToProto(p admin.Progress) *cartv1.Progress {
	out := &cartv1.Progress{
		EventsProcessed:      p.EventsProcessed,
		EventsPerSecond:      p.EventsPerSecond,
		CommitPosition:       p.Position.Commit,
		TargetCommitPosition: p.Target.Commit,
	}
	if p.ETA >= 0 {
		out.Eta = durationpb.New(p.ETA)
	}
	return out
}

func parkedToProto(p projection.ParkedEvent) *cartv1.ParkedEvent {
	return &cartv1.ParkedEvent{
		UserId:         p.Event.UserID,
		StreamId:       p.Event.StreamID,
		Version:        p.Event.Revision,
		EventType:      p.Event.Type,
		EventId:        p.Event.EventID,
		Error:          p.Error,
		ParkTime:       timestamppb.New(p.ParkedAt),
		ReplayAttempts: int32(p.ReplayAttempts),
	}
}

// operator lets only cart:admin callers through: the admin API rewrites the
// read model and reads every user's parked events.
func (s *Server) operator(ctx context.Context) error {
	if err := auth.RequireScope(ctx, auth.ScopeAdmin); err != nil {
		return rpc.ToStatus(ctx, s.log, err, adminErrors)
	}
	return nil
}
