package push

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ssfd/ssfd/internal/telemetry"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
	"github.com/ssfd/ssfd/transmitter"
)

// Manager runs push delivery: one worker per push stream with SETs to send, one SET in flight per stream (order
// is kept), many streams in parallel up to a bound. It implements transmitter.Notifier, so a queued SET or a
// re-enabled stream wakes its worker at once.
type Manager struct {
	store   streams.Store
	queue   streams.Queue
	sender  *Sender
	backoff Backoff
	slots   chan struct{}
	now     func() time.Time
	log     *slog.Logger
	obs     transmitter.Observer
	workers *transmitter.Workers
}

// Option configures a Manager.
type Option func(*Manager)

// WithBackoff sets the retry policy (default DefaultBackoff).
func WithBackoff(b Backoff) Option { return func(m *Manager) { m.backoff = b } }

// WithConcurrency bounds how many pushes are in flight at once, over all streams (default 64).
func WithConcurrency(n int) Option {
	return func(m *Manager) { m.slots = make(chan struct{}, max(n, 1)) }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(m *Manager) { m.log = l } }

// WithObserver sets who is told about pushes, for metrics.
func WithObserver(o transmitter.Observer) Option { return func(m *Manager) { m.obs = o } }

// WithClock replaces time.Now, for the age of SETs.
func WithClock(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// NewManager returns a manager that reads streams from store, SETs from queue, and pushes with sender.
func NewManager(store streams.Store, queue streams.Queue, sender *Sender, opts ...Option) *Manager {
	m := &Manager{store: store, queue: queue, sender: sender, backoff: DefaultBackoff,
		slots: make(chan struct{}, 64), now: time.Now, log: slog.Default(), obs: transmitter.NopObserver{}}
	for _, opt := range opts {
		opt(m)
	}
	m.workers = transmitter.NewWorkers(m.work)
	return m
}

// Run starts a worker for every push stream and delivers until ctx is done; then it waits for the workers, each
// finishing the push it has in flight.
func (m *Manager) Run(ctx context.Context) error {
	return m.workers.RunFor(ctx, m.store, schemas.DeliveryPush)
}

// Resync starts or wakes the worker of every stream it delivers, for when wake-ups may have been missed.
func (m *Manager) Resync() { m.workers.Resync() }

// SetOwnership makes this replica deliver only the streams o says it owns (clustered ssfd); call it before Run.
func (m *Manager) SetOwnership(o transmitter.Ownership) { m.workers.SetOwnership(o) }

// Notify wakes the workers of the given streams, starting one for a stream that has none; a worker whose
// stream is not a push stream ends at once.
func (m *Manager) Notify(ids ...streams.ID) { m.workers.Notify(ids...) }

// Queued wakes the workers of the given streams when they are push streams: SETs were queued for them.
func (m *Manager) Queued(method schemas.DeliveryMethod, ids ...streams.ID) {
	m.workers.Queued(method, ids...)
}

// idleCheck is how often an idle worker looks at its stream even without a wake-up.
const idleCheck = 30 * time.Second

// work delivers the SETs of one stream, oldest first, one at a time, until the stream is gone or is no longer a
// push stream.
func (m *Manager) work(ctx context.Context, id streams.ID, wake *transmitter.Wake) {
	w := &worker{m: m, id: id, acks: transmitter.NewAcks(m.queue, id, m.log)}
	defer w.acks.Close()
	for {
		if wake.Changed() { // the stream's configuration or status may have changed: read it before the next push
			w.stream.Forget()
		}
		wait, retrying, done := w.step(ctx)
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
		case <-w.acks.Progress(): // an acknowledgement landed: the next SET may be waiting behind it
			if !m.finishWait(ctx, timer, retrying) {
				return
			}
		case <-wake.C:
			if !m.finishWait(ctx, timer, retrying) {
				return
			}
		case <-timer.C:
		}
	}
}

// worker is the state of one stream's delivery: its copy of the stream, its background acknowledgements, and the
// attempts at the SET it is retrying.
type worker struct {
	m       *Manager
	id      streams.ID
	acks    *transmitter.Acks
	stream  transmitter.StreamCopy
	attempt int
	lastJTI string
	// ahead holds SETs read ahead of their push, oldest first, read at mark: one queue read serves many pushes
	// (a clustered queue answers in milliseconds). A change of the stream's status or configuration empties it.
	ahead []streams.Item
	mark  uint64
}

// readAhead is how many SETs a worker reads from the queue at once beyond those awaiting acknowledgement.
const readAhead = 32

// step pushes the next SET if there is one to push now, and says how long to wait before the next step, whether
// that wait is a retry backoff, and whether the worker is done.
func (w *worker) step(ctx context.Context) (wait time.Duration, retrying, done bool) {
	m := w.m
	s, moved, err := w.stream.Get(ctx, m.store, w.id)
	switch {
	case errors.Is(err, streams.ErrNotFound):
		return 0, false, true
	case err != nil:
		return m.backoff.Min, false, ctx.Err() != nil
	case moved:
		w.ahead = nil
	}
	switch {
	case s.Config.Delivery.Method != schemas.DeliveryPush:
		return 0, false, true
	case s.Status != schemas.StatusEnabled && !s.PausedForInactivity:
		return idleCheck, false, false // paused holds, disabled drops: nothing to send until enabled again
	}
	it, ok, err := w.next(ctx)
	switch {
	case err != nil:
		return m.backoff.Min, false, ctx.Err() != nil
	case !ok || !s.Deliverable(it.Queued):
		return idleCheck, false, false
	}
	if it.JTI != w.lastJTI {
		w.attempt, w.lastJTI = 0, it.JTI
	}
	w.attempt++
	wait = m.deliver(ctx, s, it, w.attempt, w.acks)
	if wait == 0 { // delivered (now in flight) or dead-lettered: on to the next
		w.ahead = w.ahead[1:]
	}
	return wait, wait > 0, false
}

// finishWait ends an interrupted wait: a retry still waits out its backoff, an idle wait ends now. It reports
// false when ctx ended first.
func (m *Manager) finishWait(ctx context.Context, timer *time.Timer, retrying bool) bool {
	if !retrying {
		timer.Stop()
		return true
	}
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		timer.Stop()
		return false
	}
}

// next returns the oldest queued SET that was not delivered yet (delivered ones wait for their acknowledgement),
// from the SETs read ahead or, when they are used up, from a new read of the queue.
func (w *worker) next(ctx context.Context) (streams.Item, bool, error) {
	for range 2 {
		for len(w.ahead) > 0 && w.acks.InFlight(w.ahead[0].JTI, w.mark) {
			w.ahead = w.ahead[1:]
		}
		if len(w.ahead) > 0 {
			return w.ahead[0], true, nil
		}
		w.mark = w.acks.Snapshot()
		items, _, err := w.m.queue.Pending(ctx, w.id, w.acks.Len()+readAhead)
		if err != nil {
			return streams.Item{}, false, err
		}
		w.ahead = items
	}
	return streams.Item{}, false, nil
}

// deliver pushes one SET and settles it: acknowledged on 202, dead-lettered when refused for good or too old,
// otherwise kept for a retry after the returned backoff.
func (m *Manager) deliver(ctx context.Context, s *streams.Stream, it streams.Item, attempt int, acks *transmitter.Acks) time.Duration {
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	start := time.Now()
	out := m.sender.Send(ctx, s.Config.Delivery, it.SET)
	<-m.slots
	took := time.Since(start)
	if telemetry.Enabled() {
		outcome := map[Result]string{Delivered: "delivered", Permanent: "refused"}[out.Result]
		telemetry.Delivery(ctx, "push", string(s.ID()), it.JTI, it.SET, cmp.Or(outcome, "retry"), start)
	}
	// Settle with a context that outlives shutdown: the push happened, its outcome must be recorded.
	settle := context.WithoutCancel(ctx)
	switch out.Result {
	case Delivered:
		acks.Add(it.JTI)
		m.obs.Pushed(took, "delivered")
		m.obs.SETsDelivered(schemas.DeliveryPush, 1)
		return 0
	case Permanent:
		m.obs.Pushed(took, "dead_letter")
		m.deadLetter(settle, s.ID(), it, out.Error)
		return 0
	}
	m.obs.Pushed(took, "retry")
	if m.now().Sub(it.Queued) > m.backoff.MaxAge {
		out.Error.Description = "gave up after " + m.backoff.MaxAge.String() + "; last failure: " + out.Error.Description
		m.deadLetter(settle, s.ID(), it, out.Error)
		return 0
	}
	m.obs.SETsRetried(schemas.DeliveryPush, 1)
	m.log.Info("push failed, will retry", "stream_id", s.ID(), "jti", it.JTI, "attempt", attempt,
		"status", out.Status, "err", out.Error.Err, "description", out.Error.Description)
	return m.backoff.Delay(attempt, out.RetryAfter)
}

func (m *Manager) deadLetter(ctx context.Context, id streams.ID, it streams.Item, e schemas.SETError) {
	m.obs.SETsDeadLettered(schemas.DeliveryPush, 1)
	m.log.Warn("push dead-lettered", "stream_id", id, "jti", it.JTI, "err", e.Err, "description", e.Description)
	if err := m.queue.Reject(ctx, id, []streams.DeliveryError{{JTI: it.JTI, Error: e, At: m.now()}}); err != nil {
		m.log.Error("record dead letter", "stream_id", id, "jti", it.JTI, "err", err)
	}
}
