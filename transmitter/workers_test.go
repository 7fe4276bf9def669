package transmitter_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
	"github.com/ssfd/ssfd/streams"
	"github.com/ssfd/ssfd/transmitter"
)

// grants is an Ownership whose owned keys the test sets by hand.
type grants struct {
	mu    sync.Mutex
	owned map[string]context.CancelFunc
	ctxs  map[string]context.Context
	gain  []func()
}

func (g *grants) Acquire(key string) (context.Context, func(), bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ctx, ok := g.ctxs[key]
	return ctx, func() {}, ok
}

func (g *grants) OnGain(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gain = append(g.gain, f)
}

func (g *grants) grant(key string) {
	g.mu.Lock()
	ctx, cancel := context.WithCancel(context.Background())
	g.ctxs[key], g.owned[key] = ctx, cancel
	fns := g.gain
	g.mu.Unlock()
	for _, f := range fns {
		f()
	}
}

func (g *grants) revoke(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.owned[key]()
	delete(g.ctxs, key)
	delete(g.owned, key)
}

// TestWorkersRunOnlyOwnedStreams: a replica runs the worker of a stream only while it owns it; the worker ends
// when ownership goes.
func TestWorkersRunOnlyOwnedStreams(t *testing.T) {
	var mu sync.Mutex
	running := map[streams.ID]bool{}
	w := transmitter.NewWorkers(func(ctx context.Context, id streams.ID, _ *transmitter.Wake) {
		mu.Lock()
		running[id] = true
		mu.Unlock()
		<-ctx.Done()
		mu.Lock()
		running[id] = false
		mu.Unlock()
	})
	g := &grants{owned: map[string]context.CancelFunc{}, ctxs: map[string]context.Context{}}
	w.SetOwnership(g)
	g.grant("a")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	is := func(id streams.ID, want bool) {
		t.Helper()
		for range 500 {
			mu.Lock()
			got := running[id]
			mu.Unlock()
			if got == want {
				return
			}
			w.Notify(id)
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("worker %s running = %v, want %v", id, !want, want)
	}
	is("a", true)
	w.Notify("b")
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	if running["b"] {
		t.Fatal("a worker runs for a stream another replica owns")
	}
	mu.Unlock()
	g.revoke("a")
	is("a", false)
	cancel()
	<-done
}

// TestWorkersTellQueuedFromChanged: through RunFor, an emit's wake-up (Queued) tells a worker that its stream did
// not change and Notify says it may have, also for a worker that runs for a stream of the emit's old method.
// TestQueuedStartsNoWorkerOfAnotherMethod checks the method filter itself.
func TestWorkersTellQueuedFromChanged(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "ssfd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seen := make(chan string, 16)
	w := transmitter.NewWorkers(func(ctx context.Context, id streams.ID, wake *transmitter.Wake) {
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake.C:
				seen <- fmt.Sprintf("%s changed=%v", id, wake.Changed())
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.RunFor(ctx, db, schemas.DeliveryPush) }()
	next := func() string {
		t.Helper()
		for {
			select {
			case s := <-seen:
				if !strings.HasPrefix(s, "ready ") {
					return s
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no worker woke")
				return ""
			}
		}
	}
	// Wake-ups before Run are dropped: wake a stream until its worker runs (its later wake-ups are skipped).
	for ready := false; !ready; {
		w.Notify("ready")
		select {
		case s := <-seen:
			ready = strings.HasPrefix(s, "ready ")
		case <-time.After(10 * time.Millisecond):
		}
	}
	w.Queued(schemas.DeliveryNATS, "nats-stream")
	w.Queued(schemas.DeliveryPush, "push-stream")
	if s := next(); s != "push-stream changed=false" {
		t.Fatalf("first wake-up: %q, want the push stream's, unchanged", s)
	}
	w.Notify("push-stream")
	if s := next(); s != "push-stream changed=true" {
		t.Fatalf("after Notify: %q", s)
	}
	w.Queued(schemas.DeliveryPush, "push-stream")
	if s := next(); s != "push-stream changed=false" {
		t.Fatalf("after Queued: %q", s)
	}
	w.Notify("nats-stream") // a change wakes every method's workers: the stream may have become a push stream
	if s := next(); s != "nats-stream changed=true" {
		t.Fatalf("after Notify of the other stream: %q", s)
	}
	// An emit that routed with the stream's old method still wakes the worker that now runs for it.
	w.Queued(schemas.DeliveryNATS, "nats-stream")
	if s := next(); s != "nats-stream changed=false" {
		t.Fatalf("after Queued with the old method: %q", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(seen)
	for s := range seen {
		if !strings.HasPrefix(s, "ready ") {
			t.Fatalf("unexpected wake-up %q", s)
		}
	}
}
