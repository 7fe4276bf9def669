package transmitter

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// Workers runs at most one goroutine per stream for a delivery method (push, NATS): Notify starts the
// stream's worker or wakes the one that runs. A worker ends when its stream no longer needs it (deleted, or
// another delivery method) and is started again by the next Notify. It implements Notifier.
//
// In a cluster, an Ownership decides which replica runs a stream's worker: Notify starts workers only for the
// streams this replica owns, a worker ends when its stream's ownership goes, and gaining ownership starts the
// workers of every stream of the method again.
//
// Queued is the cheap wake-up of the emit path: it skips streams of other methods and tells the worker that only
// its queue grew, so that it keeps its copy of the stream instead of reading it again for every SET.
type Workers struct {
	work   func(ctx context.Context, id streams.ID, wake *Wake)
	owner  Ownership
	list   func(ctx context.Context) ([]streams.ID, error)
	method schemas.DeliveryMethod

	mu      sync.Mutex
	ctx     context.Context
	running map[streams.ID]*Wake
	wg      sync.WaitGroup
}

// Wake is how a stream's worker is woken. C holds a value after a Notify or Queued the worker has not taken yet;
// Changed says whether one of them was a Notify, after which the worker's copy of the stream may be stale.
type Wake struct {
	// C receives after every wake-up; one value stands for any number of them.
	C       chan struct{}
	changed atomic.Bool
}

// Changed reports whether the stream may have changed (a Notify) since the last call, and forgets it.
func (w *Wake) Changed() bool { return w.changed.Load() && w.changed.Swap(false) }

// Ownership tells a replica of a cluster which keys (stream IDs, named jobs) it works on; internal/lease
// implements it on JetStream. Without one, a process owns everything.
type Ownership interface {
	// Acquire reports whether this replica owns key now, with a context that ends when it stops owning it and
	// a release to call once the work under that context has stopped, so that ownership moves on only after
	// the last delivery settled.
	Acquire(key string) (ctx context.Context, release func(), ok bool)
	// OnGain registers f, called each time this replica gains ownership of keys it did not own.
	OnGain(f func())
}

// SetOwnership makes w run workers only for the streams o says this replica owns. Call it before Run.
func (w *Workers) SetOwnership(o Ownership) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.owner = o
	o.OnGain(w.Resync)
}

// Resync starts or wakes the worker of every stream of the method (those this replica owns, in a cluster): after
// ownership was gained, or when wake-ups may have been missed. It retries listing the streams until it can or
// Run ends.
func (w *Workers) Resync() {
	w.mu.Lock()
	ctx, list := w.ctx, w.list
	w.mu.Unlock()
	if ctx == nil || list == nil {
		return
	}
	for wait := 100 * time.Millisecond; ctx.Err() == nil; wait = min(2*wait, 5*time.Second) {
		if ids, err := list(ctx); err == nil {
			w.Notify(ids...)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// NewWorkers returns a set of workers that run work for a stream: work must return when ctx is done and should
// wait on wake.C between rounds.
func NewWorkers(work func(ctx context.Context, id streams.ID, wake *Wake)) *Workers {
	return &Workers{work: work, running: map[streams.ID]*Wake{}}
}

// Run lets Notify start workers until ctx is done, then waits for them to end.
func (w *Workers) Run(ctx context.Context, initial ...streams.ID) {
	w.mu.Lock()
	w.ctx = ctx
	w.mu.Unlock()
	w.Notify(initial...)
	<-ctx.Done()
	w.wg.Wait()
}

// Notify wakes the workers of the given streams, starting those that do not run; each reads its stream again.
func (w *Workers) Notify(ids ...streams.ID) { w.wake(true, "", ids) }

// Queued wakes the workers of the given streams, all delivered by method m, because SETs were queued for them
// and nothing else changed. For streams of another method it starts no worker, but still wakes one that runs:
// the emit may have routed with the method a stream had just before it changed to this one.
func (w *Workers) Queued(m schemas.DeliveryMethod, ids ...streams.ID) { w.wake(false, m, ids) }

// wake wakes the workers of ids, starting those that do not run unless m names another method than theirs.
func (w *Workers) wake(changed bool, m schemas.DeliveryMethod, ids []streams.ID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx == nil || w.ctx.Err() != nil {
		return
	}
	start := m == "" || w.method == "" || m == w.method
	for _, id := range ids {
		wake, ok := w.running[id]
		if !ok && !start {
			continue
		}
		if !ok {
			ctx, cancel := w.ctx, context.CancelFunc(func() {})
			if w.owner != nil {
				owned, release, mine := w.owner.Acquire(string(id))
				if !mine {
					continue // another replica delivers this stream
				}
				wctx, wcancel := context.WithCancel(w.ctx)
				stop := context.AfterFunc(owned, wcancel)
				ctx, cancel = wctx, func() { stop(); wcancel(); release() }
			}
			wake = &Wake{C: make(chan struct{}, 1)}
			w.running[id] = wake
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				defer cancel()
				w.work(ctx, id, wake)
				w.mu.Lock()
				delete(w.running, id)
				w.mu.Unlock()
			}()
		}
		if changed {
			wake.changed.Store(true)
		}
		select {
		case wake.C <- struct{}{}:
		default:
		}
	}
}

// RunFor starts a worker for every stream delivered by method m, then runs like Run.
func (w *Workers) RunFor(ctx context.Context, store streams.Store, m schemas.DeliveryMethod) error {
	list := func(ctx context.Context) ([]streams.ID, error) {
		all, err := store.ListStreams(ctx)
		if err != nil {
			return nil, err
		}
		var ids []streams.ID
		for _, s := range all {
			if s.Config.Delivery.Method == m {
				ids = append(ids, s.ID())
			}
		}
		return ids, nil
	}
	ids, err := list(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.list, w.method = list, m
	w.mu.Unlock()
	w.Run(ctx, ids...)
	return nil
}
