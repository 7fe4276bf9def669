package transmitter_test

import (
	"context"
	"sync"
	"testing"
	"time"

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
	w := transmitter.NewWorkers(func(ctx context.Context, id streams.ID, _ <-chan struct{}) {
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
