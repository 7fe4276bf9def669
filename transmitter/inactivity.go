package transmitter

import (
	"context"
	"fmt"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// InactivityReason is the reason given when the transmitter pauses a stream for inactivity.
const InactivityReason = "inactivity_timeout elapsed without receiver activity"

// WithInactivityTimeout sets the inactivity_timeout of new streams (SSF 1.0 §8.1.1; 0, the default, means
// none). A stream without receiver activity for that long is paused by CheckInactivity, and enabled again by
// its next activity.
func WithInactivityTimeout(d time.Duration) Option {
	return func(t *Transmitter) error { t.policy.InactivityTimeout = d; return nil }
}

// Touch records receiver activity on a stream: a management call that names it or, for poll streams, a poll
// (spec/ssf.md INA-02). It restarts the inactivity timer and enables a stream that the transmitter paused for
// inactivity, sending a stream-updated event as it does (ST-31). Writes are rate-limited to one per tenth of
// the timeout. Failures are logged, never returned: activity tracking must not fail the receiver's request.
func (t *Transmitter) Touch(ctx context.Context, id streams.ID) {
	s, err := t.store.GetStream(ctx, id)
	if err != nil || s.Config.InactivityTimeout == 0 {
		return
	}
	timeout := time.Duration(s.Config.InactivityTimeout) * time.Second
	now := t.now()
	if !s.PausedForInactivity && now.Sub(s.LastActivity) < timeout/10 {
		return
	}
	resumed := false
	s, err = t.store.UpdateStream(ctx, id, func(s *streams.Stream) error {
		s.LastActivity = now
		if s.PausedForInactivity {
			s.PausedForInactivity, resumed = false, true
			s.Status, s.StatusReason, s.UpdatedAt = schemas.StatusEnabled, "", now
		}
		return nil
	})
	if err != nil {
		t.log.Warn("record stream activity", "stream_id", id, "err", err)
		return
	}
	if resumed {
		t.routes.invalidate()
		if err := t.sendToStream(ctx, s, &schemas.StreamUpdated{Status: schemas.StatusEnabled,
			Reason: "receiver activity resumed"}); err != nil {
			t.log.Error("send stream-updated", "stream_id", id, "err", err)
		}
		if t.notifier != nil {
			t.notifier.Notify(id) // held SETs go out, even if the stream-updated event could not be queued
		}
	}
}

// CheckInactivity pauses every enabled stream whose inactivity_timeout has passed, sending a stream-updated event
// before it stops delivery (spec/ssf.md INA-01, INA-03, ST-31). It returns how many streams it paused.
func (t *Transmitter) CheckInactivity(ctx context.Context) (int, error) {
	all, err := t.store.ListStreams(ctx)
	if err != nil {
		return 0, err
	}
	paused := 0
	now := t.now()
	for _, s := range all {
		timeout := time.Duration(s.Config.InactivityTimeout) * time.Second
		if timeout == 0 || s.Status != schemas.StatusEnabled || now.Sub(s.LastActivity) < timeout {
			continue
		}
		if err := t.sendToStream(ctx, s, &schemas.StreamUpdated{Status: schemas.StatusPaused, Reason: InactivityReason}); err != nil {
			return paused, fmt.Errorf("transmitter: announce inactivity pause of %s: %w", s.ID(), err)
		}
		if _, err := t.store.UpdateStream(ctx, s.ID(), func(s *streams.Stream) error {
			if s.Status == schemas.StatusEnabled {
				// UpdatedAt is the pause instant: SETs queued up to it, the stream-updated event last, still go out.
				s.Status, s.StatusReason, s.PausedForInactivity, s.UpdatedAt = schemas.StatusPaused, InactivityReason, true, t.now()
			}
			return nil
		}); err != nil {
			return paused, err
		}
		if t.notifier != nil {
			t.notifier.Notify(s.ID()) // delivery workers read the paused status before their next SET
		}
		paused++
	}
	if paused > 0 {
		t.routes.invalidate()
	}
	return paused, nil
}

// RunInactivityChecks calls CheckInactivity every interval until ctx is done.
func (t *Transmitter) RunInactivityChecks(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := t.CheckInactivity(ctx); err != nil {
				t.log.Error("inactivity check", "err", err)
			}
		}
	}
}
