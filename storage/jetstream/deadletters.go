package jetstream

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/ssfd/ssfd/streams"
)

// Reject records dead letters with the SETs the queue held (in the order given, which Rejected keeps), then
// removes those SETs from the queue. A crash in between leaves a SET both queued and dead: it is delivered, at
// least once, and stays listed.
func (s *Streams) Reject(ctx context.Context, id streams.ID, errs []streams.DeliveryError) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	letters := slices.Clone(errs)
	queued := make([]bool, len(letters))
	err := streamsEach(ctx, len(letters), func(ctx context.Context, i int) error {
		m, err := s.leaderGet(ctx, s.queue, streamsMsgGet{LastFor: s.names.queueSubject(id, letters[i].JTI)})
		if err != nil || m == nil {
			return err
		}
		var rec queueRecord
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			return fmt.Errorf("decode queued SET %d: %w", m.Seq, err)
		}
		letters[i].SET, queued[i] = rec.SET, true
		return nil
	})
	if err != nil {
		return streamsErr("reject SETs of stream "+string(id), err)
	}
	for _, e := range letters {
		raw, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("jetstream: encode the dead letter %s of stream %s: %w", e.JTI, id, err)
		}
		if err := streamsRetryDetached(ctx, func(ctx context.Context) error {
			_, err := s.dead.Put(ctx, s.names.deadKey(id, e.JTI), raw)
			return err
		}); err != nil {
			return streamsErr("record the dead letter "+e.JTI+" of stream "+string(id), err)
		}
	}
	err = streamsEach(ctx, len(letters), func(ctx context.Context, i int) error {
		if !queued[i] {
			return nil
		}
		return s.purge(ctx, s.queue, s.names.queueSubject(id, letters[i].JTI))
	})
	if err != nil {
		return streamsErr("remove rejected SETs of stream "+string(id), err)
	}
	return nil
}

// deadLetters returns the dead letters of a stream, oldest first, with their subjects in the dead letters
// bucket.
func (s *Streams) deadLetters(ctx context.Context, id streams.ID) ([]streams.DeliveryError, []string, error) {
	msgs, err := s.entries(ctx, s.deadStream, s.names.kvSubject(s.names.deadBucket(), s.names.deadKeys(id)))
	if err != nil {
		return nil, nil, streamsErr("list the dead letters of stream "+string(id), err)
	}
	letters, subjects := make([]streams.DeliveryError, len(msgs)), make([]string, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Data, &letters[i]); err != nil {
			return nil, nil, fmt.Errorf("jetstream: decode a dead letter of stream %s: %w", id, err)
		}
		subjects[i] = m.Subject
	}
	return letters, subjects, nil
}

// Rejected lists the dead letters of a stream, oldest first (by when they were last recorded).
func (s *Streams) Rejected(ctx context.Context, id streams.ID) ([]streams.DeliveryError, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	letters, _, err := s.deadLetters(ctx, id)
	return letters, err
}

// selectDead returns the dead letters of a stream named in jtis (all when jtis is empty) that keep pass, with
// their subjects.
func (s *Streams) selectDead(ctx context.Context, id streams.ID, jtis []string, keep func(streams.DeliveryError) bool) ([]streams.DeliveryError, []string, error) {
	letters, subjects, err := s.deadLetters(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	var outL []streams.DeliveryError
	var outS []string
	for i, e := range letters {
		if (len(jtis) == 0 || slices.Contains(jtis, e.JTI)) && keep(e) {
			outL, outS = append(outL, e), append(outS, subjects[i])
		}
	}
	return outL, outS, nil
}

// dropDead purges dead letters by their subjects.
func (s *Streams) dropDead(ctx context.Context, subjects []string) error {
	return streamsEach(ctx, len(subjects), func(ctx context.Context, i int) error {
		return s.purge(ctx, s.deadStream, subjects[i])
	})
}

// Redrive queues the dead letters that kept their SET again, at the end of the queue with a new Queued time,
// then deletes them; an empty jtis means all. A crash in between leaves them both queued and dead.
func (s *Streams) Redrive(ctx context.Context, id streams.ID, jtis []string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if _, _, err := s.config(ctx, id); err != nil {
		return 0, err
	}
	letters, subjects, err := s.selectDead(ctx, id, jtis, func(e streams.DeliveryError) bool { return e.SET != "" })
	if err != nil || len(letters) == 0 {
		return 0, err
	}
	now := time.Now()
	items := make([]streams.Item, len(letters))
	for i, e := range letters {
		items[i] = streams.Item{Stream: id, JTI: e.JTI, SET: e.SET, Queued: now}
	}
	if err := s.publish(ctx, items); err != nil {
		return 0, err
	}
	if err := s.dropDead(ctx, subjects); err != nil {
		return len(items), streamsErr("delete redriven dead letters of stream "+string(id), err)
	}
	return len(items), nil
}

// DropRejected deletes dead letters; an empty jtis means all. It returns how many it deleted.
func (s *Streams) DropRejected(ctx context.Context, id streams.ID, jtis []string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	_, subjects, err := s.selectDead(ctx, id, jtis, func(streams.DeliveryError) bool { return true })
	if err != nil {
		return 0, err
	}
	if err := s.dropDead(ctx, subjects); err != nil {
		return 0, streamsErr("delete dead letters of stream "+string(id), err)
	}
	return len(subjects), nil
}
