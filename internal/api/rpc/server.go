package rpc

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// Request limits that keep one caller from exhausting a server.
const (
	maxRecvMsgSize       = 1 << 20 // 1 MiB: the largest valid request is a few KiB.
	maxConcurrentStreams = 1000
)

// NewServer builds a gRPC server with what every service of this product
// needs: the trust boundary of sec (undecodable requests refused as the
// caller's fault, authentication, rate limits, TLS), panic recovery, one
// log line per call, keepalive settings that tolerate clients pinging every
// 10 s (as the EventStoreDB client and mobile SDKs do), message size
// limits, health (always open) and, if sec says so, server reflection.
// The caller registers its services and flips health to SERVING when ready.
func NewServer(log *slog.Logger, sec Security, opts ...grpc.ServerOption) (*grpc.Server, *health.Server) {
	base := append(sec.options(log),
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.MaxConcurrentStreams(maxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepaliveParams(0, 0)),
	)
	srv := grpc.NewServer(append(base, opts...)...)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	if sec.Reflection {
		reflection.Register(srv)
	}
	return srv, hs
}

// keepaliveParams are the server's keepalive pings with the given
// connection age (zero: unlimited); opts of NewServer may replace them,
// which is how ServerConfig.ServerOptions sets the age.
func keepaliveParams(maxAge, grace time.Duration) keepalive.ServerParameters {
	p := keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}
	if maxAge > 0 {
		p.MaxConnectionAge = maxAge
		p.MaxConnectionAgeGrace = grace
	}
	return p
}

// GracefulStop stops srv, letting calls in flight finish for up to timeout
// before cutting them off, so a stuck stream cannot block shutdown forever.
func GracefulStop(srv *grpc.Server, hs *health.Server, timeout time.Duration) {
	hs.Shutdown() // NOT_SERVING first, so balancers drain us
	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		srv.Stop()
		<-done
	}
}

// Header names of the request metadata that feeds the audit trail (who
// acted comes from the token, see package auth).
const (
	HeaderCorrelationID = "x-correlation-id"
	HeaderCausationID   = "x-causation-id"
)

// FirstHeader is the first value of a request header, empty when absent;
// the audit headers are single-valued.
func FirstHeader(ctx context.Context, name string) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func unaryInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		ctx = beginCall(ctx, req, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) })
		defer func() {
			if r := recover(); r != nil {
				log.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
			logCall(ctx, log, info.FullMethod, start, err)
		}()
		return handler(ctx, req)
	}
}

func streamInterceptor(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		start := time.Now()
		ctx := beginCall(ss.Context(), nil, ss.SetHeader)
		ss = contextStream{ServerStream: ss, ctx: ctx}
		defer func() {
			if r := recover(); r != nil {
				log.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
			logCall(ctx, log, info.FullMethod, start, err)
		}()
		return handler(srv, ss)
	}
}

// logCall writes the one line per call: health checks and reflection are
// left out at Info since load balancers call them constantly.
func logCall(ctx context.Context, log *slog.Logger, method string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelInfo
	switch code {
	case codes.OK, codes.Canceled, codes.InvalidArgument, codes.FailedPrecondition, codes.NotFound, codes.Aborted, codes.AlreadyExists, codes.OutOfRange:
	case codes.Internal, codes.Unknown, codes.DataLoss:
		level = slog.LevelError
	default:
		level = slog.LevelWarn
	}
	if level == slog.LevelInfo && (len(method) > 8 && (method[:8] == "/grpc.he" || method[:8] == "/grpc.re")) {
		level = slog.LevelDebug
	}
	log.Log(ctx, level, "rpc", append([]any{"method", method, "code", code.String(), "duration", time.Since(start)},
		callAttrs(ctx, method)...)...)
}
