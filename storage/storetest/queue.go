package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// Backend is a store that is also a queue, as every ssfd backend is: the queue only accepts SETs for streams
// the store holds.
type Backend interface {
	streams.Store
	streams.Queue
}

func item(id streams.ID, n int) streams.Item {
	return streams.Item{Stream: id, JTI: fmt.Sprintf("%s-%d", id, n), SET: fmt.Sprintf("set-%d", n), Queued: time.Unix(1767225600, 0)}
}

func jtis(items []streams.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.JTI
	}
	return out
}

// withStreams creates n streams in b and returns their IDs.
func withStreams(t *testing.T, b Backend, n int) []streams.ID {
	t.Helper()
	ids := make([]streams.ID, n)
	for i := range ids {
		s := newStream(int64(i))
		if err := b.CreateStream(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		ids[i] = s.ID()
	}
	return ids
}

// TestQueue runs the streams.Queue conformance suite against the backends open returns, one per subtest.
func TestQueue(t *testing.T, open func(t *testing.T) Backend) {
	ctx := context.Background()
	t.Run("returns pending SETs oldest first with moreAvailable", func(t *testing.T) {
		b := open(t)
		id := withStreams(t, b, 1)[0]
		var items []streams.Item
		for i := range 5 {
			items = append(items, item(id, i))
		}
		if err := b.Enqueue(ctx, items); err != nil {
			t.Fatal(err)
		}
		got, more, err := b.Pending(ctx, id, 3)
		if err != nil || !more || fmt.Sprint(jtis(got)) != fmt.Sprint(jtis(items[:3])) || got[0].SET != "set-0" || !got[0].Queued.Equal(items[0].Queued) {
			t.Fatalf("Pending(3) = %v %v %v", jtis(got), more, err)
		}
		got, more, _ = b.Pending(ctx, id, 10)
		if more || len(got) != 5 {
			t.Fatalf("Pending(10) = %d more=%v", len(got), more)
		}
		got, more, _ = b.Pending(ctx, id, 0)
		if len(got) != 0 || !more {
			t.Fatalf("Pending(0) = %d more=%v, want none and more", len(got), more)
		}
		if n, err := b.Depth(ctx, id); err != nil || n != 5 {
			t.Fatalf("Depth = %d %v", n, err)
		}
	})
	t.Run("enqueues across streams all or nothing", func(t *testing.T) {
		b := open(t)
		ids := withStreams(t, b, 2)
		if err := b.Enqueue(ctx, []streams.Item{item(ids[0], 1), item(ids[1], 1)}); err != nil {
			t.Fatal(err)
		}
		missing := streams.NewID()
		if err := b.Enqueue(ctx, []streams.Item{item(ids[0], 2), item(missing, 1)}); !errors.Is(err, streams.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if n, _ := b.Depth(ctx, ids[0]); n != 1 {
			t.Fatalf("a failed Enqueue stored part of its items: depth %d", n)
		}
		if err := b.Enqueue(ctx, []streams.Item{{Stream: ids[0], JTI: "", SET: "x"}}); err == nil {
			t.Fatal("an item without jti must be refused")
		}
	})
	t.Run("acknowledges only the named SETs and ignores unknown ones", func(t *testing.T) {
		b := open(t)
		id := withStreams(t, b, 1)[0]
		if err := b.Enqueue(ctx, []streams.Item{item(id, 0), item(id, 1), item(id, 2)}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := b.Ack(ctx, id, []string{item(id, 1).JTI, "unknown-jti"}); err != nil {
				t.Fatal(err)
			}
		}
		got, _, _ := b.Pending(ctx, id, 10)
		if fmt.Sprint(jtis(got)) != fmt.Sprint([]string{item(id, 0).JTI, item(id, 2).JTI}) {
			t.Fatalf("after ack: %v", jtis(got))
		}
	})
	t.Run("rejects SETs and records why", func(t *testing.T) {
		b := open(t)
		id := withStreams(t, b, 1)[0]
		if err := b.Enqueue(ctx, []streams.Item{item(id, 0), item(id, 1)}); err != nil {
			t.Fatal(err)
		}
		rej := []streams.DeliveryError{{JTI: item(id, 0).JTI, Error: schemas.SETError{Err: schemas.ErrInvalidKey, Description: "unknown kid"}, At: time.Unix(1767225700, 0).UTC()}}
		if err := b.Reject(ctx, id, rej); err != nil {
			t.Fatal(err)
		}
		got, err := b.Rejected(ctx, id)
		if err != nil || len(got) != 1 || got[0].JTI != rej[0].JTI || got[0].Error != rej[0].Error || got[0].SET != "set-0" {
			t.Fatalf("Rejected = %+v %v", got, err)
		}
		if n, _ := b.Depth(ctx, id); n != 1 {
			t.Fatalf("a rejected SET stays queued: depth %d", n)
		}
	})
	t.Run("redrives dead letters to the end of the queue and drops them", func(t *testing.T) {
		b := open(t)
		id := withStreams(t, b, 1)[0]
		if err := b.Enqueue(ctx, []streams.Item{item(id, 0), item(id, 1), item(id, 2)}); err != nil {
			t.Fatal(err)
		}
		reason := schemas.SETError{Err: schemas.ErrInvalidAudience}
		if err := b.Reject(ctx, id, []streams.DeliveryError{{JTI: item(id, 0).JTI, Error: reason}, {JTI: item(id, 1).JTI, Error: reason}, {JTI: "never-queued", Error: reason}}); err != nil {
			t.Fatal(err)
		}
		n, err := b.Redrive(ctx, id, []string{item(id, 0).JTI, "never-queued"})
		if err != nil || n != 1 {
			t.Fatalf("Redrive = %d %v, want 1 (a dead letter without its SET stays)", n, err)
		}
		got, _, _ := b.Pending(ctx, id, 10)
		if fmt.Sprint(jtis(got)) != fmt.Sprint([]string{item(id, 2).JTI, item(id, 0).JTI}) {
			t.Fatalf("after redrive: %v", jtis(got))
		}
		if n, err := b.DropRejected(ctx, id, nil); err != nil || n != 2 {
			t.Fatalf("DropRejected(all) = %d %v", n, err)
		}
		if r, _ := b.Rejected(ctx, id); len(r) != 0 {
			t.Fatalf("dead letters left: %v", r)
		}
		if _, err := b.Redrive(ctx, streams.NewID(), nil); !errors.Is(err, streams.ErrNotFound) {
			t.Fatalf("Redrive of an unknown stream: %v", err)
		}
	})
	t.Run("purges one stream only", func(t *testing.T) {
		b := open(t)
		ids := withStreams(t, b, 2)
		if err := b.Enqueue(ctx, []streams.Item{item(ids[0], 0), item(ids[1], 0)}); err != nil {
			t.Fatal(err)
		}
		if err := b.Reject(ctx, ids[0], []streams.DeliveryError{{JTI: "x", Error: schemas.SETError{Err: schemas.ErrInvalidRequest}}}); err != nil {
			t.Fatal(err)
		}
		if err := b.Purge(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		if n, _ := b.Depth(ctx, ids[0]); n != 0 {
			t.Fatalf("purged stream still holds %d", n)
		}
		if r, _ := b.Rejected(ctx, ids[0]); len(r) != 0 {
			t.Fatal("purge keeps rejections")
		}
		if n, _ := b.Depth(ctx, ids[1]); n != 1 {
			t.Fatal("purge touched another stream")
		}
		if err := b.Enqueue(ctx, []streams.Item{item(ids[0], 1)}); err != nil {
			t.Fatalf("a purged stream takes SETs again: %v", err)
		}
	})
	t.Run("deleting a stream empties its queue", func(t *testing.T) {
		b := open(t)
		s := newStream(1)
		if err := b.CreateStream(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := b.Enqueue(ctx, []streams.Item{item(s.ID(), 0)}); err != nil {
			t.Fatal(err)
		}
		if err := b.DeleteStream(ctx, s.ID()); err != nil {
			t.Fatal(err)
		}
		if err := b.CreateStream(ctx, s); err != nil {
			t.Fatal(err)
		}
		if n, _ := b.Depth(ctx, s.ID()); n != 0 {
			t.Fatalf("a recreated stream inherited %d SETs", n)
		}
	})
	t.Run("concurrent enqueues lose nothing and keep each caller's order", func(t *testing.T) {
		b := open(t)
		id := withStreams(t, b, 1)[0]
		const callers, each = 16, 50
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					it := streams.Item{Stream: id, JTI: fmt.Sprintf("c%d-%03d", c, i), SET: "s", Queued: time.Now()}
					if err := b.Enqueue(ctx, []streams.Item{it}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got, more, err := b.Pending(ctx, id, callers*each+1)
		if err != nil || more || len(got) != callers*each {
			t.Fatalf("Pending = %d %v %v", len(got), more, err)
		}
		last := map[string]string{}
		for _, it := range got {
			caller := it.JTI[:len(it.JTI)-4]
			if it.JTI <= last[caller] {
				t.Fatalf("order broken for %s: %s after %s", caller, it.JTI, last[caller])
			}
			last[caller] = it.JTI
		}
	})
	t.Run("honours a cancelled context", func(t *testing.T) {
		b := open(t)
		id := withStreams(t, b, 1)[0]
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := b.Enqueue(cctx, []streams.Item{item(id, 0)}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
}
