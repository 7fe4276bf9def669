package transmitter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// own returns the stream if it exists and belongs to p; a stream of another client is reported exactly like a
// missing one (spec/ssf.md API-03).
func (t *Transmitter) own(ctx context.Context, p Principal, id streams.ID) (*streams.Stream, error) {
	s, err := t.store.GetStream(ctx, id)
	if err != nil {
		return nil, protocolError(err)
	}
	if s.Owner != p.ClientID {
		return nil, NotFound()
	}
	t.Touch(ctx, id)
	return s, nil
}

// update changes a stream of p in one store transaction, re-checking ownership inside it.
func (t *Transmitter) update(ctx context.Context, p Principal, id streams.ID, change func(*streams.Stream) error) (*streams.Stream, error) {
	s, err := t.store.UpdateStream(ctx, id, func(s *streams.Stream) error {
		if s.Owner != p.ClientID {
			return NotFound()
		}
		return change(s)
	})
	if err != nil {
		return nil, protocolError(err)
	}
	t.routes.invalidate()
	if t.notifier != nil {
		t.notifier.Notify(id) // delivery workers pick up the new configuration or status before their next SET
	}
	t.Touch(ctx, id)
	return s, nil
}

// CreateStream creates a stream for p from a create request body (SSF 1.0 §8.1.1.1). Several streams per
// client are allowed (spec/ssf.md CRT-06).
func (t *Transmitter) CreateStream(ctx context.Context, p Principal, body []byte) (*streams.Stream, error) {
	s, err := t.policy.NewStream(p.ClientID, p.Audience, body, t.now())
	if err != nil {
		return nil, protocolError(err)
	}
	if err := t.store.CreateStream(ctx, s); err != nil {
		return nil, protocolError(err)
	}
	t.routes.invalidate()
	return s, nil
}

// GetStream returns one stream of p (SSF 1.0 §8.1.1.2).
func (t *Transmitter) GetStream(ctx context.Context, p Principal, id streams.ID) (*streams.Stream, error) {
	return t.own(ctx, p, id)
}

// ListStreams returns every stream of p, oldest first; an empty list when there is none (spec/ssf.md RD-02).
func (t *Transmitter) ListStreams(ctx context.Context, p Principal) ([]*streams.Stream, error) {
	all, err := t.store.ListStreams(ctx)
	if err != nil {
		return nil, err
	}
	out := []*streams.Stream{}
	for _, s := range all {
		if s.Owner == p.ClientID {
			out = append(out, s)
		}
	}
	return out, nil
}

// streamIDOf reads the stream_id member of a body that must carry one (SSF 1.0 §8.1.1.3 and on). A body that
// is not a JSON object is a 400 before any lookup (spec/ssf.md API-07).
func streamIDOf(body []byte) (streams.ID, error) {
	var b struct {
		StreamID *string `json:"stream_id"`
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil || probe == nil {
		return "", BadRequest("the body must be a JSON object")
	}
	if err := json.Unmarshal(body, &b); err != nil || b.StreamID == nil {
		return "", BadRequest("stream_id is required and must be a string")
	}
	id, err := streams.ParseID(*b.StreamID)
	if err != nil {
		return "", NotFound() // no stream can have an ID of another shape
	}
	return id, nil
}

// UpdateStream applies a PATCH body to a stream of p (SSF 1.0 §8.1.1.3).
func (t *Transmitter) UpdateStream(ctx context.Context, p Principal, body []byte) (*streams.Stream, error) {
	return t.change(ctx, p, body, t.policy.Update)
}

// ReplaceStream applies a PUT body to a stream of p (SSF 1.0 §8.1.1.4).
func (t *Transmitter) ReplaceStream(ctx context.Context, p Principal, body []byte) (*streams.Stream, error) {
	return t.change(ctx, p, body, t.policy.Replace)
}

func (t *Transmitter) change(ctx context.Context, p Principal, body []byte,
	apply func(*streams.Stream, []byte, time.Time) (*streams.Stream, error)) (*streams.Stream, error) {
	id, err := streamIDOf(body)
	if err != nil {
		return nil, err
	}
	return t.update(ctx, p, id, func(s *streams.Stream) error {
		next, err := apply(s, body, t.now())
		if err != nil {
			return err
		}
		*s = *next
		return nil
	})
}

// DeleteStream deletes a stream of p, purging its subjects and queued SETs (SSF 1.0 §8.1.1.5).
func (t *Transmitter) DeleteStream(ctx context.Context, p Principal, id streams.ID) error {
	if _, err := t.own(ctx, p, id); err != nil {
		return err
	}
	if err := t.store.DeleteStream(ctx, id); err != nil {
		return protocolError(err)
	}
	t.routes.invalidate()
	if t.notifier != nil {
		defer t.notifier.Notify(id) // delivery workers find the stream gone and stop
	}
	if err := t.queue.Purge(ctx, id); err != nil && !errors.Is(err, streams.ErrNotFound) {
		return fmt.Errorf("transmitter: purge queue of %s: %w", id, err)
	}
	return nil
}

// Status returns the status of a stream of p (SSF 1.0 §8.1.2.1).
func (t *Transmitter) Status(ctx context.Context, p Principal, id streams.ID) (schemas.StreamStatusResponse, error) {
	s, err := t.own(ctx, p, id)
	if err != nil {
		return schemas.StreamStatusResponse{}, err
	}
	return s.StatusResponse(), nil
}

// SetStatus changes the status of a stream of p at the receiver's request (SSF 1.0 §8.1.2.2). A stream going
// to disabled drops the SETs it held, since a disabled stream holds nothing.
func (t *Transmitter) SetStatus(ctx context.Context, p Principal, body []byte) (schemas.StreamStatusResponse, error) {
	id, err := streamIDOf(body)
	if err != nil {
		return schemas.StreamStatusResponse{}, err
	}
	var req schemas.StreamStatusResponse
	if err := json.Unmarshal(body, &req); err != nil {
		return schemas.StreamStatusResponse{}, BadRequest("status and reason must be strings")
	}
	if _, err := schemas.ParseStreamStatus(string(req.Status)); err != nil {
		return schemas.StreamStatusResponse{}, BadRequest("status must be enabled, paused or disabled")
	}
	s, err := t.update(ctx, p, id, func(s *streams.Stream) error {
		s.Status, s.StatusReason, s.PausedForInactivity = req.Status, req.Reason, false
		s.UpdatedAt, s.LastActivity = t.now(), t.now()
		return nil
	})
	if err != nil {
		return schemas.StreamStatusResponse{}, err
	}
	if s.Status == schemas.StatusDisabled {
		if err := t.queue.Purge(ctx, id); err != nil {
			return schemas.StreamStatusResponse{}, fmt.Errorf("transmitter: purge disabled stream %s: %w", id, err)
		}
	} else if s.Status == schemas.StatusEnabled && t.notifier != nil {
		t.notifier.Notify(id) // held SETs are deliverable again
	}
	return s.StatusResponse(), nil
}

// DeadLetters lists the dead letters of a stream of p: SETs its receiver refused for good (push 400 with a
// permanent code, poll setErrs) or that were retried for too long.
func (t *Transmitter) DeadLetters(ctx context.Context, p Principal, id streams.ID) ([]streams.DeliveryError, error) {
	if _, err := t.own(ctx, p, id); err != nil {
		return nil, err
	}
	return t.queue.Rejected(ctx, id)
}

// Redrive queues dead letters of a stream of p again (all when jtis is empty) and wakes its delivery.
func (t *Transmitter) Redrive(ctx context.Context, p Principal, id streams.ID, jtis []string) (int, error) {
	if _, err := t.own(ctx, p, id); err != nil {
		return 0, err
	}
	n, err := t.queue.Redrive(ctx, id, jtis)
	if err != nil {
		return 0, protocolError(err)
	}
	if n > 0 && t.notifier != nil {
		t.notifier.Notify(id)
	}
	return n, nil
}

// PurgeDeadLetters deletes dead letters of a stream of p (all when jtis is empty).
func (t *Transmitter) PurgeDeadLetters(ctx context.Context, p Principal, id streams.ID, jtis []string) (int, error) {
	if _, err := t.own(ctx, p, id); err != nil {
		return 0, err
	}
	return t.queue.DropRejected(ctx, id, jtis)
}
