package transmitter

import (
	"context"
	"log/slog"
	"sync"

	"github.com/ssfd/ssfd/streams"
)

// Acks acknowledges delivered SETs of one stream in the background, so that a delivery worker sends the next
// SET while the queue makes the last acknowledgement durable (and many streams share a commit). Until an
// acknowledgement is durable the jti is "in flight": the worker skips it, and after a crash it is delivered
// again (at-least-once; receivers de-duplicate by jti).
//
// A read of the queue that began before an acknowledgement was durable may still return its SET, however long
// the read takes (a clustered queue answers in milliseconds): so a settled jti is skipped until the worker
// starts a read after it settled (Snapshot), not only until it settled.
type Acks struct {
	queue streams.Queue
	id    streams.ID
	log   *slog.Logger

	mu       sync.Mutex
	inflight map[string]uint64 // 0 while the acknowledgement is pending, else the generation it settled in
	gen      uint64            // counts flushes
	pending  []string
	kick     chan struct{}
	progress chan struct{}
	done     chan struct{}
}

// NewAcks starts the background acknowledger of stream id; Close stops it.
func NewAcks(queue streams.Queue, id streams.ID, log *slog.Logger) *Acks {
	a := &Acks{queue: queue, id: id, log: log, inflight: map[string]uint64{},
		kick: make(chan struct{}, 1), progress: make(chan struct{}, 1), done: make(chan struct{}), gen: 1}
	go a.run()
	return a
}

// Add marks jtis as delivered; they are acknowledged soon.
func (a *Acks) Add(jtis ...string) {
	a.mu.Lock()
	for _, j := range jtis {
		a.inflight[j] = 0
	}
	a.pending = append(a.pending, jtis...)
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Snapshot marks the start of a read of the queue and returns its mark for InFlight. Acknowledgements that
// settled before it can no longer show up in a read, so they are forgotten here.
func (a *Acks) Snapshot() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	for j, g := range a.inflight {
		if g != 0 {
			delete(a.inflight, j)
		}
	}
	return a.gen
}

// InFlight reports whether jti must be skipped by a read that began at mark: delivered and not yet durably
// acknowledged, or acknowledged only after the read began (the read may predate it).
func (a *Acks) InFlight(jti string, mark uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, ok := a.inflight[jti]
	return ok && (g == 0 || g >= mark)
}

// Len is the number of SETs delivered but not yet durably acknowledged.
func (a *Acks) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.inflight)
}

// Progress is signalled after each durable acknowledgement.
func (a *Acks) Progress() <-chan struct{} { return a.progress }

// Close acknowledges what is pending and stops.
func (a *Acks) Close() {
	close(a.kick)
	<-a.done
}

func (a *Acks) run() {
	defer close(a.done)
	for range a.kick {
		a.flush()
	}
	a.flush()
}

func (a *Acks) flush() {
	a.mu.Lock()
	batch := a.pending
	a.pending = nil
	a.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	err := a.queue.Ack(context.Background(), a.id, batch)
	a.mu.Lock()
	if err != nil {
		a.log.Error("acknowledge delivered SETs; they will be delivered again", "stream_id", a.id, "err", err)
	}
	for _, j := range batch {
		if err != nil {
			delete(a.inflight, j) // the SETs stay queued and are simply delivered again
		} else {
			a.inflight[j] = a.gen
		}
	}
	a.gen++
	a.mu.Unlock()
	select {
	case a.progress <- struct{}{}:
	default:
	}
}
