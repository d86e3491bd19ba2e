package projection

import (
	"sync"
	"testing"
)

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestNotifier(t *testing.T) {
	t.Parallel()
	n := NewNotifier()
	at3, cancel3 := n.Wait("u1", 3)
	at5, cancel5 := n.Wait("u1", 5)
	other, cancelOther := n.Wait("u2", 0)
	defer cancel3()
	defer cancel5()

	n.Notify("u1", 2)
	if isClosed(at3) || isClosed(at5) {
		t.Fatal("a waiter woke for a version below its minimum")
	}
	n.Notify("u1", 4)
	if !isClosed(at3) || isClosed(at5) {
		t.Fatal("version 4 must wake the waiter for 3 and only it")
	}
	n.Notify("u1", 9)
	if !isClosed(at5) {
		t.Fatal("version 9 did not wake the waiter for 5")
	}
	if isClosed(other) {
		t.Fatal("another user's waiter woke")
	}
	cancelOther()
	cancel3() // after waking: harmless
	if got := n.waiting(); got != 0 {
		t.Fatalf("%d waiters left registered, want 0", got)
	}
}

func TestNotifierConcurrent(t *testing.T) {
	t.Parallel()
	n := NewNotifier()
	var registered, woken sync.WaitGroup
	for i := range 50 {
		registered.Add(1)
		woken.Go(func() {
			ch, cancel := n.Wait("u", int64(i%10))
			defer cancel()
			registered.Done()
			<-ch
		})
	}
	registered.Wait()
	var notified sync.WaitGroup
	for v := range int64(10) {
		notified.Go(func() { n.Notify("u", v) })
	}
	notified.Wait()
	woken.Wait()
	if got := n.waiting(); got != 0 {
		t.Fatalf("%d waiters left registered", got)
	}
}

func TestNotifierWakeAll(t *testing.T) {
	t.Parallel()
	n := NewNotifier()
	a, cancelA := n.Wait("u1", 7)
	b, cancelB := n.Wait("u2", 0)
	n.WakeAll()
	if !isClosed(a) || !isClosed(b) {
		t.Fatal("WakeAll left a waiter asleep")
	}
	cancelA()
	cancelB() // after waking: harmless
	if got := n.waiting(); got != 0 {
		t.Fatalf("%d waiters left registered, want 0", got)
	}
	c, cancelC := n.Wait("u1", 1)
	defer cancelC()
	if isClosed(c) {
		t.Fatal("a waiter registered after WakeAll woke without a notification")
	}
}
