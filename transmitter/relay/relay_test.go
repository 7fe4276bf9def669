package relay_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
	"github.com/ssfd/ssfd/streams"
	"github.com/ssfd/ssfd/transmitter/relay"
)

// flakyBus is a Publisher that refuses its first publishes, then records what it is given.
type flakyBus struct {
	mu       sync.Mutex
	failures int
	got      []string
}

func (b *flakyBus) PublishSETs(_ context.Context, _ streams.ID, items []streams.Item) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures > 0 {
		b.failures--
		return errors.New("no JetStream acknowledgement")
	}
	for _, it := range items {
		b.got = append(b.got, it.JTI)
	}
	return nil
}

func (b *flakyBus) published() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

func TestRelayRetriesUntilTheBusAcknowledgesAndKeepsOrder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "ssfd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id := streams.NewID()
	s := &streams.Stream{Config: schemas.StreamConfiguration{StreamID: string(id), Delivery: schemas.Delivery{Method: schemas.DeliveryNATS}},
		Status: schemas.StatusEnabled}
	if err := db.CreateStream(ctx, s); err != nil {
		t.Fatal(err)
	}
	var items []streams.Item
	for _, j := range []string{"j1", "j2", "j3"} {
		items = append(items, streams.Item{Stream: id, JTI: j, SET: "a.b.c", Queued: time.Now()})
	}
	if err := db.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	bus := &flakyBus{failures: 2}
	r := relay.New(db, db, bus, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if n, _ := db.Depth(ctx, id); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay never emptied the queue")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := bus.published(); len(got) != 3 || got[0] != "j1" || got[2] != "j3" {
		t.Fatalf("published %v", got)
	}
	cancel()
	<-done
}
