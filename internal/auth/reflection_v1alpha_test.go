//lint:file-ignore SA1019 reflection.Register still serves v1alpha, so the interceptor's rule for it needs a test.

package auth_test

import (
	"io"

	"google.golang.org/grpc"

	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
)

func reflectV1alpha(s reflectionv1alpha.ServerReflection_ServerReflectionInfoClient) error {
	req := &reflectionv1alpha.ServerReflectionRequest{MessageRequest: &reflectionv1alpha.ServerReflectionRequest_ListServices{}}
	if err := s.Send(req); err != nil && err != io.EOF {
		return err
	}
	_, err := s.Recv()
	s.CloseSend()
	return err
}

func newV1alphaClient(cc grpc.ClientConnInterface) reflectionv1alpha.ServerReflectionClient {
	return reflectionv1alpha.NewServerReflectionClient(cc)
}
