package bolt_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
	"github.com/ssfd/ssfd/storage/storetest"
	"github.com/ssfd/ssfd/streams"
)

func open(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "ssfd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestStoreConformance(t *testing.T) {
	storetest.TestStore(t, func(t *testing.T) streams.Store { return open(t) })
}

func TestQueueConformance(t *testing.T) {
	storetest.TestQueue(t, func(t *testing.T) storetest.Backend { return open(t) })
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ssfd.db")
	db, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	id := streams.NewID()
	s := &streams.Stream{Config: schemas.StreamConfiguration{StreamID: string(id)}, Owner: "c", Status: schemas.StatusPaused, CreatedAt: time.Unix(5, 0)}
	if err := db.CreateStream(ctx, s); err != nil {
		t.Fatal(err)
	}
	sub, _ := schemas.NewEmail("a@example.com")
	if err := db.SetSubject(ctx, id, streams.SubjectEntry{Subject: sub, Included: true}); err != nil {
		t.Fatal(err)
	}
	items := []streams.Item{{Stream: id, JTI: "j1", SET: "a.b.c", Queued: time.Unix(7, 0)}, {Stream: id, JTI: "j2", SET: "d.e.f", Queued: time.Unix(8, 0)}}
	if err := db.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := db.Reject(ctx, id, []streams.DeliveryError{{JTI: "j0", Error: schemas.SETError{Err: schemas.ErrInvalidKey}}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Enqueue(ctx, items); !errors.Is(err, streams.ErrClosed) {
		t.Fatalf("Enqueue after Close: %v", err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v %v", info.Mode().Perm(), err)
	}
	db, err = bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.GetStream(ctx, id)
	if err != nil || got.Status != schemas.StatusPaused {
		t.Fatalf("stream after reopen: %+v %v", got, err)
	}
	subs, _ := db.Subjects(ctx, id)
	pending, _, _ := db.Pending(ctx, id, 10)
	rejected, _ := db.Rejected(ctx, id)
	if len(subs) != 1 || len(pending) != 2 || pending[0].JTI != "j1" || pending[1].SET != "d.e.f" || len(rejected) != 1 {
		t.Fatalf("after reopen: %d subjects, %v pending, %d rejected", len(subs), pending, len(rejected))
	}
}

func TestASecondOpenFailsWithAClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ssfd.db")
	db, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := bolt.Open(path, bolt.WithTimeout(50*time.Millisecond)); !errors.Is(err, bolt.ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
}

func TestInboxConformance(t *testing.T) {
	storetest.TestInbox(t, func(t *testing.T) receiver.Inbox { return open(t) })
}
