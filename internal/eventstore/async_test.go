package eventstore

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// onTestGoroutine tells whether it runs on a test's own goroutine (whose
// stack starts in testing.tRunner), i.e. whether async ran call on the
// caller's goroutine rather than on one it started.
func onTestGoroutine() bool {
	buf := make([]byte, 64<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), "testing.tRunner(")
}

func TestAsync(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tests := []struct {
		name       string
		ctx        context.Context
		wantCaller bool
	}{
		{"a context that cannot end runs on the caller's goroutine", context.Background(), true},
		{"a context without Done runs on the caller's goroutine", context.WithoutCancel(canceled), true},
		{"a cancellable context keeps its own goroutine", canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var onCaller bool
			v, abandoned, err := async(tt.ctx, func() (int, error) {
				onCaller = onTestGoroutine()
				return 7, errors.New("from call")
			}, func(int, error) { t.Error("abandoned a call that answered") })
			if v != 7 || abandoned || err == nil || err.Error() != "from call" {
				t.Fatalf("async = %d, %v, %v; want the call's 7, false, its error", v, abandoned, err)
			}
			if onCaller != tt.wantCaller {
				t.Fatalf("call on the caller's goroutine: %v, want %v", onCaller, tt.wantCaller)
			}
		})
	}
}

// A call the client keeps blocked (what discovery does) is abandoned when
// the caller's context ends, and its results still reach abandon.
func TestAsyncAbandonsABlockedCall(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	got := make(chan int, 1)
	started := make(chan struct{})
	go func() {
		<-started
		cancel()
	}()
	_, abandoned, err := async(ctx, func() (int, error) {
		close(started)
		<-release
		return 3, nil
	}, func(v int, _ error) { got <- v })
	if !abandoned || !errors.Is(err, context.Canceled) {
		t.Fatalf("async = %v, %v; want abandoned with context.Canceled", abandoned, err)
	}
	close(release)
	if v := <-got; v != 3 {
		t.Fatalf("abandon got %d, want the call's 3", v)
	}
}

// BenchmarkAsync is what async adds to a call that answers at once: nothing
// for a context that cannot end, a goroutine and a channel hand-off for one
// that can.
func BenchmarkAsync(b *testing.B) {
	cancellable, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	for _, bc := range []struct {
		name string
		ctx  context.Context
	}{{"background", context.Background()}, {"cancellable", cancellable}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := async(bc.ctx, func() (int, error) { return 1, nil }, func(int, error) {}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
