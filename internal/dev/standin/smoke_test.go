package standin

import (
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

func TestSmokeAppendReadSubscribe(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)

	res := mustAppend(t, c, "cart-1", esdb.NoStream{}, events(3, "ItemAdded")...)
	if res.NextExpectedVersion != 2 || res.CommitPosition == 0 {
		t.Fatalf("append result = %+v", res)
	}
	got, err := readStream(t, c, "cart-1", esdb.ReadStreamOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !equalSlices(revisions(got), []uint64{0, 1, 2}) {
		t.Fatalf("revisions = %v", revisions(got))
	}

	sub, err := c.SubscribeToAll(testCtx(t), esdb.SubscribeToAllOptions{
		From:   esdb.Start{},
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"cart-"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for want := range uint64(3) {
		if ev := nextEvent(t, sub); ev.OriginalEvent().EventNumber != want {
			t.Fatalf("event %d: got revision %d", want, ev.OriginalEvent().EventNumber)
		}
	}
	mustAppend(t, c, "cart-1", esdb.Revision(2), events(1, "ItemRemoved")...)
	if ev := nextEvent(t, sub); ev.OriginalEvent().EventNumber != 3 || ev.OriginalEvent().EventType != "ItemRemoved" {
		t.Fatalf("live event = %+v", ev.OriginalEvent())
	}
}
