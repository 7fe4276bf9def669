package transmitter_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
	"github.com/ssfd/ssfd/streams"
	"github.com/ssfd/ssfd/transmitter"
)

// countingStore counts the stream reads of a real store.
type countingStore struct {
	streams.Store
	reads int
}

func (c *countingStore) GetStream(ctx context.Context, id streams.ID) (*streams.Stream, error) {
	c.reads++
	return c.Store.GetStream(ctx, id)
}

// TestStreamCopyIsReadAgainOnlyWhenForgotten: a worker's copy of its stream costs one read until Forget, and the
// read after a status change reports that it moved.
func TestStreamCopyIsReadAgainOnlyWhenForgotten(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "ssfd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id := streams.NewID()
	if err := db.CreateStream(ctx, &streams.Stream{Status: schemas.StatusEnabled,
		Config: schemas.StreamConfiguration{StreamID: string(id)}}); err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Store: db}
	var c transmitter.StreamCopy
	if s, moved, err := c.Get(ctx, store, id); err != nil || !moved || s.Status != schemas.StatusEnabled {
		t.Fatalf("first read: %v %v %v", s, moved, err)
	}
	if _, moved, err := c.Get(ctx, store, id); err != nil || moved || store.reads != 1 {
		t.Fatalf("second Get: moved %v, %d reads, %v", moved, store.reads, err)
	}
	if _, err := db.UpdateStream(ctx, id, func(s *streams.Stream) error { s.Status = schemas.StatusPaused; return nil }); err != nil {
		t.Fatal(err)
	}
	c.Forget()
	if s, moved, err := c.Get(ctx, store, id); err != nil || !moved || s.Status != schemas.StatusPaused || store.reads != 2 {
		t.Fatalf("after Forget: %v moved %v, %d reads, %v", s, moved, store.reads, err)
	}
	if err := db.DeleteStream(ctx, id); err != nil {
		t.Fatal(err)
	}
	c.Forget()
	if _, _, err := c.Get(ctx, store, id); err == nil {
		t.Fatal("a deleted stream's copy was read again without an error")
	}
}
