package relay

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ssfd/ssfd/internal/telemetry"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
	"github.com/ssfd/ssfd/transmitter"
)

// Publisher publishes SETs of a stream to the bus, in order, and returns once the bus acknowledged every one.
// Publishing a SET again (same jti) must not duplicate it.
type Publisher interface {
	PublishSETs(ctx context.Context, id streams.ID, items []streams.Item) error
}

// Batch is how many SETs one round publishes before waiting for the acknowledgements.
const Batch = 256

// Relay moves the SETs of NATS-delivered streams from their queues to the bus. It implements
// transmitter.Notifier.
type Relay struct {
	store   streams.Store
	queue   streams.Queue
	pub     Publisher
	log     *slog.Logger
	obs     transmitter.Observer
	workers *transmitter.Workers
}

// New returns a relay from store and queue to pub; obs (may be nil) is told what was published.
func New(store streams.Store, queue streams.Queue, pub Publisher, log *slog.Logger, obs transmitter.Observer) *Relay {
	if obs == nil {
		obs = transmitter.NopObserver{}
	}
	r := &Relay{store: store, queue: queue, pub: pub, log: log, obs: obs}
	r.workers = transmitter.NewWorkers(r.work)
	return r
}

// Run relays until ctx is done.
func (r *Relay) Run(ctx context.Context) error {
	return r.workers.RunFor(ctx, r.store, schemas.DeliveryNATS)
}

// Resync starts or wakes the worker of every stream it delivers, for when wake-ups may have been missed.
func (r *Relay) Resync() { r.workers.Resync() }

// SetOwnership makes this replica deliver only the streams o says it owns (clustered ssfd); call it before Run.
func (r *Relay) SetOwnership(o transmitter.Ownership) { r.workers.SetOwnership(o) }

// Notify wakes the workers of the given streams, which read them again.
func (r *Relay) Notify(ids ...streams.ID) { r.workers.Notify(ids...) }

// Queued wakes the workers of the given streams when they are NATS streams: SETs were queued for them.
func (r *Relay) Queued(m schemas.DeliveryMethod, ids ...streams.ID) { r.workers.Queued(m, ids...) }

// work relays one stream: publish up to Batch pending SETs, then acknowledge them in the queue; retry with
// backoff when the bus does not acknowledge.
func (r *Relay) work(ctx context.Context, id streams.ID, wake *transmitter.Wake) {
	w := &worker{id: id, backoff: 100 * time.Millisecond}
	for {
		if wake.Changed() {
			w.stream.Forget()
		}
		wait, done := r.round(ctx, w)
		if done {
			return
		}
		if wait == 0 {
			continue
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-wake.C:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// worker is the state of one stream's relay: its copy of the stream and its retry backoff.
type worker struct {
	id      streams.ID
	stream  transmitter.StreamCopy
	backoff time.Duration
}

// round relays one batch and says how long to wait before the next, or that the worker is done.
func (r *Relay) round(ctx context.Context, w *worker) (time.Duration, bool) {
	const idle = 30 * time.Second
	id, backoff := w.id, &w.backoff
	s, _, err := w.stream.Get(ctx, r.store, id)
	switch {
	case errors.Is(err, streams.ErrNotFound):
		return 0, true
	case err != nil:
		return *backoff, ctx.Err() != nil
	case s.Config.Delivery.Method != schemas.DeliveryNATS:
		return 0, true
	case s.Status != schemas.StatusEnabled && !s.PausedForInactivity:
		return idle, false
	}
	items, more, err := r.queue.Pending(ctx, id, Batch)
	if err != nil || len(items) == 0 {
		return idle, ctx.Err() != nil
	}
	for i, it := range items {
		if !s.Deliverable(it.Queued) {
			items, more = items[:i], false
			break
		}
	}
	if len(items) == 0 {
		return idle, false
	}
	start := time.Now()
	if err := r.pub.PublishSETs(ctx, id, items); err != nil {
		r.obs.SETsRetried(schemas.DeliveryNATS, len(items))
		r.log.Warn("relay to NATS failed, will retry", "stream_id", id, "err", err)
		wait := *backoff
		*backoff = min(*backoff*2, 5*time.Second)
		return wait, ctx.Err() != nil
	}
	*backoff = 100 * time.Millisecond
	jtis := make([]string, len(items))
	for i, it := range items {
		jtis[i] = it.JTI
	}
	r.obs.SETsDelivered(schemas.DeliveryNATS, len(items))
	for _, it := range items {
		telemetry.Delivery(ctx, "nats", string(id), it.JTI, it.SET, "delivered", start)
	}
	if err := r.queue.Ack(context.WithoutCancel(ctx), id, jtis); err != nil {
		r.log.Error("acknowledge relayed SETs", "stream_id", id, "err", err)
		return *backoff, false
	}
	if more {
		return 0, false
	}
	return idle, false
}
