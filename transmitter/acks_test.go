package transmitter_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
	"github.com/ssfd/ssfd/streams"
	"github.com/ssfd/ssfd/transmitter"
)

// TestAcksSkipWhatSettledDuringARead: a read of the queue that began before an acknowledgement was durable may
// still return the SET; the worker must skip it for that read and may forget it only at its next read.
func TestAcksSkipWhatSettledDuringARead(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	id := streams.NewID()
	if err := db.CreateStream(ctx, &streams.Stream{Config: schemas.StreamConfiguration{StreamID: string(id)}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.Enqueue(ctx, []streams.Item{{Stream: id, JTI: "a", SET: "x", Queued: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	acks := transmitter.NewAcks(db, id, slog.New(slog.DiscardHandler))
	defer acks.Close()
	acks.Add("a")
	mark := acks.Snapshot() // a read begins while "a" is pending
	if !acks.InFlight("a", mark) {
		t.Fatal("a pending acknowledgement is not in flight")
	}
	select {
	case <-acks.Progress():
	case <-time.After(time.Minute):
		t.Fatal("the acknowledgement never settled")
	}
	if !acks.InFlight("a", mark) {
		t.Fatal("an acknowledgement that settled during a read is not skipped by that read")
	}
	next := acks.Snapshot()
	if acks.InFlight("a", next) || acks.Len() != 0 {
		t.Fatalf("a read that began after the acknowledgement settled still skips it (len %d)", acks.Len())
	}
	if n, err := db.Depth(ctx, id); err != nil || n != 0 {
		t.Fatalf("depth after the acknowledgement = %d, %v", n, err)
	}
}
