package bolt_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
	"github.com/ssfd/ssfd/streams"
)

func TestCommitWindowStillCommits(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "w.db"), bolt.WithCommitWindow(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id := streams.NewID()
	if err := db.CreateStream(context.Background(), &streams.Stream{Config: schemas.StreamConfiguration{StreamID: string(id)}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := db.Enqueue(context.Background(), []streams.Item{{Stream: id, JTI: string(rune('a' + i)), SET: "s", Queued: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := db.Depth(context.Background(), id); n != 3 {
		t.Fatalf("depth %d", n)
	}
}
