package poll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ssfd/ssfd/internal/telemetry"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
	"github.com/ssfd/ssfd/transmitter"
)

// DefaultTimeout is how long a long poll waits for a SET before answering with none (spec/ssf.md PO-11
// recommends 15 to 30 s). The HTTP server's write timeout must be longer.
const DefaultTimeout = 25 * time.Second

// MaxBatch caps the SETs of one response when the receiver sets no maxEvents; moreAvailable says the rest.
const MaxBatch = 1000

// Server serves RFC 8936 poll delivery: acknowledgements and setErrs are applied first, then unacknowledged SETs
// are returned oldest first; a long poll waits until one is queued. Unacknowledged SETs are returned again on
// the next poll (at-least-once), so a receiver acknowledges in its next request.
type Server struct {
	store    streams.Store
	queue    streams.Queue
	waker    *Waker
	timeout  time.Duration
	activity func(context.Context, streams.ID)
	obs      transmitter.Observer
}

// Option configures a Server.
type Option func(*Server)

// WithTimeout sets the long-poll timeout (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(s *Server) { s.timeout = d } }

// WithActivity sets what is told that a receiver polled a stream (transmitter.Touch, for the inactivity timer:
// a poll is activity on a poll stream, spec/ssf.md INA-02).
func WithActivity(f func(context.Context, streams.ID)) Option {
	return func(s *Server) { s.activity = f }
}

// WithObserver sets who is told about acknowledged and rejected SETs, for metrics.
func WithObserver(o transmitter.Observer) Option { return func(s *Server) { s.obs = o } }

// NewServer returns a poll server over the stream store and queue, woken by waker.
func NewServer(store streams.Store, queue streams.Queue, waker *Waker, opts ...Option) *Server {
	s := &Server{store: store, queue: queue, waker: waker, timeout: DefaultTimeout, obs: transmitter.NopObserver{}}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Poll answers one poll request of p for stream id (RFC 8936 §2.4, §2.5). Paused and disabled streams answer
// with no SETs (spec/ssf.md ST-01): paused ones keep them for later.
func (s *Server) Poll(ctx context.Context, p transmitter.Principal, id streams.ID, req *schemas.PollRequest) (*schemas.PollResponse, error) {
	if _, err := s.owned(ctx, p, id); err != nil {
		return nil, err
	}
	if s.activity != nil {
		s.activity(ctx, id)
	}
	if err := s.acknowledge(ctx, id, req); err != nil {
		return nil, err
	}
	limit := MaxBatch
	if req.MaxEvents != nil && *req.MaxEvents < limit {
		limit = *req.MaxEvents
	}
	if limit == 0 { // acknowledge only (RFC 8936 §2.4.2)
		return &schemas.PollResponse{Sets: map[string]string{}}, nil
	}
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	for {
		woken := s.waker.wait(id)
		resp, err := s.collect(ctx, p, id, limit)
		if err != nil || len(resp.Sets) > 0 || req.ReturnImmediately {
			return resp, err
		}
		select {
		case <-woken:
		case <-timer.C:
			return resp, nil
		case <-s.waker.closed:
			return resp, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// owned returns the stream if p owns it, and a 404 otherwise (spec/ssf.md API-03).
func (s *Server) owned(ctx context.Context, p transmitter.Principal, id streams.ID) (*streams.Stream, error) {
	st, err := s.store.GetStream(ctx, id)
	if errors.Is(err, streams.ErrNotFound) || err == nil && st.Owner != p.ClientID {
		return nil, transmitter.NotFound()
	}
	return st, err
}

// acknowledge applies ack and setErrs before any SET is chosen (spec/ssf.md PO-12).
func (s *Server) acknowledge(ctx context.Context, id streams.ID, req *schemas.PollRequest) error {
	if len(req.Ack) > 0 {
		if err := s.queue.Ack(ctx, id, req.Ack); err != nil {
			return fmt.Errorf("poll: ack: %w", err)
		}
		s.obs.SETsDelivered(schemas.DeliveryPoll, len(req.Ack))
	}
	if len(req.SetErrs) > 0 {
		errs := make([]streams.DeliveryError, 0, len(req.SetErrs))
		now := time.Now()
		for jti, e := range req.SetErrs {
			errs = append(errs, streams.DeliveryError{JTI: jti, Error: e, At: now})
		}
		if err := s.queue.Reject(ctx, id, errs); err != nil {
			return fmt.Errorf("poll: record setErrs: %w", err)
		}
		s.obs.SETsDeadLettered(schemas.DeliveryPoll, len(errs))
	}
	return nil
}

// collect returns the deliverable SETs of the stream now: none unless it is enabled.
func (s *Server) collect(ctx context.Context, p transmitter.Principal, id streams.ID, limit int) (*schemas.PollResponse, error) {
	resp := &schemas.PollResponse{Sets: map[string]string{}}
	st, err := s.owned(ctx, p, id)
	if err != nil || st.Status != schemas.StatusEnabled {
		return resp, err
	}
	items, more, err := s.queue.Pending(ctx, id, limit)
	if err != nil {
		return nil, fmt.Errorf("poll: read queue: %w", err)
	}
	for _, it := range items {
		resp.Sets[it.JTI] = it.SET
		telemetry.Delivery(ctx, "poll", string(id), it.JTI, it.SET, "served", time.Now())
	}
	resp.MoreAvailable = more
	return resp, nil
}
