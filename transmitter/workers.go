package transmitter

import (
	"context"
	"sync"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// Workers runs at most one goroutine per stream for a delivery method (push, NATS): Notify starts the
// stream's worker or wakes the one that runs. A worker ends when its stream no longer needs it (deleted, or
// another delivery method) and is started again by the next Notify. It implements Notifier.
type Workers struct {
	work func(ctx context.Context, id streams.ID, wake <-chan struct{})

	mu      sync.Mutex
	ctx     context.Context
	running map[streams.ID]chan struct{}
	wg      sync.WaitGroup
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
			wake = make(chan struct{}, 1)
			w.running[id] = wake
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				w.work(w.ctx, id, wake)
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
	all, err := store.ListStreams(ctx)
	if err != nil {
		return err
	}
	var ids []streams.ID
	for _, s := range all {
		if s.Config.Delivery.Method == m {
			ids = append(ids, s.ID())
		}
	}
	w.Run(ctx, ids...)
	return nil
}
