package transmitter

import (
	"context"
	"encoding/json"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// Verify queues a verification event on a stream of p, echoing state (SSF 1.0 §8.1.4.2). It travels through the
// stream's queue, so it never overtakes SETs queued before it. A request inside min_verification_interval is
// refused with 429 and Retry-After (spec/ssf.md VF-20); a disabled stream cannot verify (VF-05); a paused stream
// holds the event until it is enabled again.
func (t *Transmitter) Verify(ctx context.Context, p Principal, body []byte) error {
	id, err := streamIDOf(body)
	if err != nil {
		return err
	}
	var req schemas.VerificationRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return BadRequest("state must be a string")
	}
	t.verifyMu.Lock()
	defer t.verifyMu.Unlock()
	now := t.now()
	s, err := t.update(ctx, p, id, func(s *streams.Stream) error {
		if s.Status == schemas.StatusDisabled {
			return BadRequest("the stream is disabled; enable it before verifying it")
		}
		if min := t.policy.MinVerificationInterval; min > 0 && !s.LastVerification.IsZero() {
			if wait := s.LastVerification.Add(min).Sub(now); wait > 0 {
				return tooSoon(wait)
			}
		}
		s.LastVerification, s.LastActivity = now, now
		return nil
	})
	if err != nil {
		return err
	}
	return t.sendToStream(ctx, s, &schemas.Verification{State: req.State})
}

// sendToStream queues a transmitter-generated SSF event (verification, stream-updated) on one stream, with the
// stream itself as the subject (SSF 1.0 §8.1.4.1).
func (t *Transmitter) sendToStream(ctx context.Context, s *streams.Stream, p schemas.Payload) error {
	subject, err := streams.StreamSubject(s.ID())
	if err != nil {
		return err
	}
	ev, err := schemas.NewEvent(p)
	if err != nil {
		return err
	}
	item, err := t.seal(s, subject, ev, newJTI())
	if err != nil {
		return err
	}
	if err := t.enqueue(ctx, []streams.Item{item}, nil); err != nil { // nil: Notify, the stream may be changing
		return err
	}
	t.observer.SETsQueued(s.Config.Delivery.Method, 1)
	return nil
}
