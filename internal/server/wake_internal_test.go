package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// wakeLog records the wake-ups a replica passes to its local notifiers.
type wakeLog chan string

func (w wakeLog) Notify(ids ...streams.ID) {
	for _, id := range ids {
		w <- "notify " + string(id)
	}
}

func (w wakeLog) Queued(m schemas.DeliveryMethod, ids ...streams.ID) {
	for _, id := range ids {
		w <- fmt.Sprintf("queued %s %s", m, id)
	}
}

// TestWakeUpsKeepTheirKindAcrossReplicas: a replica's emit reaches another replica as Queued with the stream's
// delivery method, a change as Notify, a wake-up without the header (an older replica) as Notify, and a replica
// ignores its own wake-ups.
func TestWakeUpsKeepTheirKindAcrossReplicas(t *testing.T) {
	emb, err := natsbus.StartEmbedded("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	conn := func(name string) *Server {
		nc, err := natsbus.Connect(emb.ClientURL(), name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return &Server{nc: nc, wakeFrom: name}
	}
	a, b := conn("replica-a"), conn("replica-b")
	got := make(wakeLog, 16)
	if err := b.followWakes(got); err != nil {
		t.Fatal(err)
	}
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	pushStream, natsStream, changed, old := streams.NewID(), streams.NewID(), streams.NewID(), streams.NewID()
	// b's own wake-up reaches the server first (one subscriber gets messages in the server's order): ignored.
	clusterNotifier{nc: b.nc, self: b.wakeFrom}.Queued(schemas.DeliveryPush, streams.NewID())
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	fromA := clusterNotifier{nc: a.nc, self: a.wakeFrom}
	fromA.Queued(schemas.DeliveryPush, pushStream)
	fromA.Queued(schemas.DeliveryNATS, natsStream)
	fromA.Notify(changed)
	if err := a.nc.Publish(natsbus.WakeSubject(string(old)), []byte("an-older-replica")); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("queued %s %s", schemas.DeliveryPush, pushStream),
		fmt.Sprintf("queued %s %s", schemas.DeliveryNATS, natsStream),
		"notify " + string(changed),
		"notify " + string(old),
	}
	for i, w := range want {
		select {
		case g := <-got:
			if g != w {
				t.Fatalf("wake-up %d: %q, want %q", i, g, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("wake-up %d (%q) did not arrive", i, w)
		}
	}
	if err := a.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-got:
		t.Fatalf("unexpected wake-up %q", g)
	default:
	}
}
