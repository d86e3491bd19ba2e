package projection

import (
	"reflect"
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
	at3Wake, cancel3 := n.Wait("u1", 3)
	at3 := at3Wake.C
	at5Wake, cancel5 := n.Wait("u1", 5)
	at5 := at5Wake.C
	otherWake, cancelOther := n.Wait("u2", 0)
	other := otherWake.C
	defer cancel3()
	defer cancel5()

	n.NotifyDoc(CartDoc{UserID: "u1", Version: 2})
	if isClosed(at3) || isClosed(at5) {
		t.Fatal("a waiter woke for a version below its minimum")
	}
	n.NotifyDoc(CartDoc{UserID: "u1", Version: 4})
	if !isClosed(at3) || isClosed(at5) {
		t.Fatal("version 4 must wake the waiter for 3 and only it")
	}
	n.NotifyDoc(CartDoc{UserID: "u1", Version: 9})
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
			chWake, cancel := n.Wait("u", int64(i%10))
			ch := chWake.C
			defer cancel()
			registered.Done()
			<-ch
		})
	}
	registered.Wait()
	var notified sync.WaitGroup
	for v := range int64(10) {
		notified.Go(func() { n.NotifyDoc(CartDoc{UserID: "u", Version: v}) })
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
	aWake, cancelA := n.Wait("u1", 7)
	a := aWake.C
	bWake, cancelB := n.Wait("u2", 0)
	b := bWake.C
	n.WakeAll()
	if !isClosed(a) || !isClosed(b) {
		t.Fatal("WakeAll left a waiter asleep")
	}
	cancelA()
	cancelB() // after waking: harmless
	if got := n.waiting(); got != 0 {
		t.Fatalf("%d waiters left registered, want 0", got)
	}
	cWake, cancelC := n.Wait("u1", 1)
	c := cWake.C
	defer cancelC()
	if isClosed(c) {
		t.Fatal("a waiter registered after WakeAll woke without a notification")
	}
}

// TestNotifyDocHandsTheDocumentOver: a waiter woken by NotifyDoc gets the
// stored document; one woken by WakeAll gets none (it must read the store),
// and nobody gets one before being woken.
func TestNotifyDocHandsTheDocumentOver(t *testing.T) {
	t.Parallel()
	n := NewNotifier()
	byDoc, cancel1 := n.Wait("u1", 2)
	defer cancel1()
	byAll, cancel3 := n.Wait("u3", 2)
	defer cancel3()
	if _, ok := byDoc.Doc(); ok {
		t.Fatal("a document before any notification")
	}
	n.NotifyDoc(CartDoc{UserID: "u1", Version: 1})
	if _, ok := byDoc.Doc(); ok || isClosed(byDoc.C) {
		t.Fatal("woken by an earlier version")
	}
	want := CartDoc{UserID: "u1", Version: 3, Stale: true, StaleReason: "r"}
	n.NotifyDoc(want)
	if got, ok := byDoc.Doc(); !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("Doc() = %+v, %v; want %+v", got, ok, want)
	}
	n.WakeAll()
	if _, ok := byAll.Doc(); ok || !isClosed(byAll.C) {
		t.Fatal("WakeAll: want woken without a document")
	}
}
