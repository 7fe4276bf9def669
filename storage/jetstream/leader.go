package jetstream

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/streams"
)

// streamsMsgGet is the request of a message get ($JS.API.STREAM.MSG.GET.<stream>), which only the leader of the
// stream answers.
type streamsMsgGet struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
}

// streamsStoredMsg is a stored message as a message get (or a direct get) returns it.
type streamsStoredMsg struct {
	Subject string `json:"subject"`
	Seq     uint64 `json:"seq"`
	Header  []byte `json:"hdrs,omitempty"`
	Data    []byte `json:"data,omitempty"`
}

type streamsMsgGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *streamsStoredMsg   `json:"message,omitempty"`
}

// leaderGet asks the leader of st for one message; nil when there is none (a KV delete marker counts as none).
func (s *Streams) leaderGet(ctx context.Context, st jetstream.Stream, req streamsMsgGet) (*streamsStoredMsg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	subject := "$JS.API.STREAM.MSG.GET." + st.CachedInfo().Config.Name
	var msg *streamsStoredMsg
	err = streamsRetry(ctx, func(ctx context.Context) error {
		reply, err := s.nc.RequestWithContext(ctx, subject, body)
		if err != nil {
			return err
		}
		var resp streamsMsgGetResponse
		if err := json.Unmarshal(reply.Data, &resp); err != nil {
			return fmt.Errorf("decode the reply of %s: %w", subject, err)
		}
		switch {
		case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
			msg = nil
		case resp.Error != nil:
			return resp.Error
		default:
			msg = resp.Message
		}
		return nil
	})
	if err != nil || msg == nil {
		return nil, err
	}
	if len(msg.Header) > 0 {
		if h, err := nats.DecodeHeadersMsg(msg.Header); err == nil {
			if op := h.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
				return nil, nil
			}
		}
	}
	return msg, nil
}

// entries returns the last message of every subject of st that filter matches, in stream sequence order: the
// leader lists the subjects (STREAM.INFO with a subject filter), then answers one message get per subject, many
// at a time.
func (s *Streams) entries(ctx context.Context, st jetstream.Stream, filter string) ([]*streamsStoredMsg, error) {
	var subjects []string
	err := streamsRetry(ctx, func(ctx context.Context) error {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return err
		}
		subjects = slices.Collect(maps.Keys(info.State.Subjects))
		return nil
	})
	if err != nil {
		return nil, err
	}
	msgs := make([]*streamsStoredMsg, len(subjects))
	err = streamsEach(ctx, len(subjects), func(ctx context.Context, i int) error {
		var err error
		msgs[i], err = s.leaderGet(ctx, st, streamsMsgGet{LastFor: subjects[i]})
		return err
	})
	if err != nil {
		return nil, err
	}
	msgs = slices.DeleteFunc(msgs, func(m *streamsStoredMsg) bool { return m == nil }) // purged meanwhile
	slices.SortFunc(msgs, func(a, b *streamsStoredMsg) int { return cmp.Compare(a.Seq, b.Seq) })
	return msgs, nil
}

// purge removes every message of st on the subjects filter matches.
func (s *Streams) purge(ctx context.Context, st jetstream.Stream, filter string) error {
	return streamsRetry(ctx, func(ctx context.Context) error {
		return st.Purge(ctx, jetstream.WithPurgeSubject(filter))
	})
}

// streamsParallelism bounds the requests one call has in flight at a time.
const streamsParallelism = 32

// streamsEach calls fn for 0..n-1, streamsParallelism at a time, and returns the first error; after an error it
// starts no more calls.
func streamsEach(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	if n == 1 {
		return fn(ctx, 0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	slots := make(chan struct{}, streamsParallelism)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	if first == nil {
		return context.Cause(ctx) // the caller's ctx ended before every call started
	}
	return first
}

// Retries of requests that found no leader (an election after a node loss), timed out or were refused for
// the moment (too many atomic batches in flight).
const (
	streamsAttemptTimeout = 2 * time.Second
	streamsRetryBudget    = 30 * time.Second
)

// streamsRetry runs op, each attempt bounded by streamsAttemptTimeout, until it succeeds, fails for good, or
// streamsRetryBudget or ctx runs out.
func streamsRetry(ctx context.Context, op func(ctx context.Context) error) error {
	return streamsAttempts(ctx, ctx, op)
}

// streamsRetryDetached is streamsRetry for writes: an attempt runs to its end (or its timeout) even when ctx
// ends meanwhile, so that a failed write stored nothing unless an attempt timed out; ctx only stops the next
// attempt.
func streamsRetryDetached(ctx context.Context, op func(ctx context.Context) error) error {
	return streamsAttempts(ctx, context.WithoutCancel(ctx), op)
}

// streamsAttempts runs op with attempt contexts derived from base while ctx is not done.
func streamsAttempts(ctx, base context.Context, op func(ctx context.Context) error) error {
	give := time.Now().Add(streamsRetryBudget)
	wait := 20 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		actx, cancel := context.WithTimeout(base, streamsAttemptTimeout)
		err := op(actx)
		cancel()
		if err == nil || !streamsTransient(err) || time.Now().Add(wait).After(give) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// The JetStream error codes that pass: no leader yet, atomic batches in flight, a batch lost mid-way (a leader
// change) and a duplicate message id still being applied.
const (
	streamsErrClusterNotAvailable  = 10008
	streamsErrClusterNotLeader     = 10009
	streamsErrBatchIncomplete      = 10176
	streamsErrBatchTooManyInflight = 10210
	streamsErrDuplicateInProcess   = 10158
)

// Unavailable reports whether an error of these stores is one of a store briefly out of reach rather than
// broken: NATS reconnecting, a stream electing a leader or without quorum, a call that ran out of time. A request
// that failed so may succeed if tried again; servers answer it with 503 and Retry-After.
func Unavailable(err error) bool { return streamsTransient(err) }

// streamsTransient reports whether a failed request may succeed if tried again.
func streamsTransient(err error) bool {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionReconnecting) {
		return true
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case streamsErrClusterNotAvailable, streamsErrClusterNotLeader, streamsErrBatchIncomplete,
			streamsErrBatchTooManyInflight, streamsErrDuplicateInProcess:
			return true
		}
		return api.Code == 503
	}
	return false
}

// streamsErr wraps the error of an operation; a closed connection also matches streams.ErrClosed.
func streamsErr(op string, err error) error {
	if errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("jetstream: %s: %w: %w", op, streams.ErrClosed, err)
	}
	return fmt.Errorf("jetstream: %s: %w", op, err)
}
