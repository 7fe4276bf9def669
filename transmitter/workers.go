package transmitter

import (
	"context"
	"sync"
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
type Workers struct {
	work  func(ctx context.Context, id streams.ID, wake <-chan struct{})
	owner Ownership
	list  func(ctx context.Context) ([]streams.ID, error)

	mu      sync.Mutex
	ctx     context.Context
	running map[streams.ID]chan struct{}
	wg      sync.WaitGroup
}

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
// wait on wake between rounds.
func NewWorkers(work func(ctx context.Context, id streams.ID, wake <-chan struct{})) *Workers {
	return &Workers{work: work, running: map[streams.ID]chan struct{}{}}
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

// Notify wakes the workers of the given streams, starting those that do not run.
func (w *Workers) Notify(ids ...streams.ID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx == nil || w.ctx.Err() != nil {
		return
	}
	for _, id := range ids {
		wake, ok := w.running[id]
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
			wake = make(chan struct{}, 1)
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
		select {
		case wake <- struct{}{}:
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
	w.list = list
	w.mu.Unlock()
	w.Run(ctx, ids...)
	return nil
}
