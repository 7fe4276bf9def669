package jetstream

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/streams"
)

const (
	// queueDedupWindow is how long the queue stream remembers a Nats-Msg-Id: a publish retried within it is
	// stored once.
	queueDedupWindow = 2 * time.Minute
	// queueBatchMax is how many SETs one atomic batch carries: nats-server's default limit
	// (jetstream.limits.max_batch_size, 1000).
	queueBatchMax = 1000
	// queueBatchMaxBytes bounds the SETs of one atomic batch, which the stream leader stages in memory.
	queueBatchMaxBytes = 8 << 20
	// queueCandidatesTimeout bounds the direct get that finds Pending's candidates.
	queueCandidatesTimeout = 2 * time.Second
	// queueCandidatesMaxBytes bounds the bytes one direct get returns.
	queueCandidatesMaxBytes = 8 << 20
)

// JetStream error codes of atomic batches that Enqueue handles itself.
const (
	queueErrBatchTooLarge = 10199 // more messages than jetstream.limits.max_batch_size: use smaller batches
	queueErrBatchHasDup   = 10201 // a message id of the batch is known: a previous attempt stored the batch
)

// queueRecord is a queued SET as the queue stream stores it, on the subject of its stream and jti.
type queueRecord struct {
	JTI    string    `json:"jti"`
	Queued time.Time `json:"queued"`
	SET    string    `json:"set"`
}

// queuePubAck is JetStream's reply to a publish or to the commit of an atomic batch.
type queuePubAck struct {
	Error *jetstream.APIError `json:"error,omitempty"`
	Seq   uint64              `json:"seq"`
}

// Enqueue checks with the leader of the streams bucket that every stream of the call exists (streams.ErrNotFound
// otherwise, storing nothing), then publishes the SETs to the queue stream and returns once JetStream
// acknowledged them, which it does when a quorum of replicas stored them.
//
// A single SET is one publish. More go in atomic batches (nats-server 2.12+, AllowAtomicPublish): every message
// carries Nats-Batch-Id and Nats-Batch-Sequence, the last one also Nats-Batch-Commit and a reply subject, and
// the stream leader stores all of them or none and replies with one PubAck. A batch holds at most queueBatchMax
// SETs (1000, the server's default jetstream.limits.max_batch_size; on a server configured lower, Streams halves
// its batches until the server takes them) and queueBatchMaxBytes, so a larger call is split, and atomicity then
// holds per batch: when a later batch fails, Enqueue deletes the SETs of the batches already stored. That is
// best effort: a crash in between leaves them queued, and they are delivered, at least once.
//
// Every SET carries a Nats-Msg-Id unique to the call, so a publish or batch retried after a timeout is stored
// once (a retried batch is refused as a duplicate, which says that the first attempt was stored). Once an
// attempt is sent, Enqueue waits for its outcome even if ctx ends, and only then stops retrying.
func (s *Streams) Enqueue(ctx context.Context, items []streams.Item) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, it := range items {
		if it.Stream == "" || it.JTI == "" || it.SET == "" {
			return fmt.Errorf("jetstream: item %d needs a stream, a jti and a SET", i)
		}
	}
	if len(items) == 0 {
		return nil
	}
	if err := s.requireStreams(ctx, items); err != nil {
		return err
	}
	return s.publish(ctx, items)
}

// requireStreams checks that the stream of every item exists.
func (s *Streams) requireStreams(ctx context.Context, items []streams.Item) error {
	var ids []streams.ID
	seen := map[streams.ID]bool{}
	for _, it := range items {
		if !seen[it.Stream] {
			seen[it.Stream] = true
			ids = append(ids, it.Stream)
		}
	}
	return streamsEach(ctx, len(ids), func(ctx context.Context, i int) error {
		m, err := s.leaderGet(ctx, s.configStream, streamsMsgGet{LastFor: s.kvKey(s.names.configKey(ids[i]))})
		switch {
		case err != nil:
			return streamsErr("enqueue: read stream "+string(ids[i]), err)
		case m == nil:
			return streamsNotFound(ids[i])
		}
		return nil
	})
}

// publish stores items in the queue stream, in order.
func (s *Streams) publish(ctx context.Context, items []streams.Item) error {
	call := rand.Text()
	msgs := make([]*nats.Msg, len(items))
	for i, it := range items {
		data, err := json.Marshal(queueRecord{JTI: it.JTI, Queued: it.Queued, SET: it.SET})
		if err != nil {
			return fmt.Errorf("jetstream: encode SET %s: %w", it.JTI, err)
		}
		msgs[i] = nats.NewMsg(s.names.queueSubject(it.Stream, it.JTI))
		msgs[i].Data = data
		msgs[i].Header.Set(jetstream.MsgIDHeader, call+"-"+strconv.Itoa(i))
	}
	if len(msgs) == 1 {
		_, err := s.publishAttempts(ctx, func(ctx context.Context) (uint64, error) {
			ack, err := s.request(ctx, msgs[0])
			if err != nil {
				return 0, err
			}
			return ack.Seq, nil
		})
		return err
	}
	var stored [][2]uint64 // first and last sequence of every batch stored
	size := int(s.batchMax.Load())
	for rest := msgs; len(rest) > 0; {
		n, total := 1, len(rest[0].Data)
		for n < min(size, len(rest)) && total+len(rest[n].Data) <= queueBatchMaxBytes {
			total += len(rest[n].Data)
			n++
		}
		last, err := s.publishAttempts(ctx, func(ctx context.Context) (uint64, error) { return s.publishBatch(ctx, rest[:n]) })
		var api *jetstream.APIError
		if errors.As(err, &api) && api.ErrorCode == queueErrBatchTooLarge && n > 1 {
			size = n / 2
			s.batchMax.Store(int64(size))
			continue
		}
		if err != nil {
			return errors.Join(err, s.withdraw(ctx, stored))
		}
		if last > 0 {
			stored = append(stored, [2]uint64{last - uint64(n) + 1, last})
		}
		rest = rest[n:]
	}
	return nil
}

// publishAttempts runs attempt until it succeeds, fails for good or ctx ends. An attempt runs to its end (or
// its timeout) even when ctx ends meanwhile, so that a failed call stored nothing unless an attempt timed out.
func (s *Streams) publishAttempts(ctx context.Context, attempt func(ctx context.Context) (uint64, error)) (uint64, error) {
	var seq uint64
	err := streamsRetryDetached(ctx, func(actx context.Context) error {
		var err error
		seq, err = attempt(actx)
		return err
	})
	if err != nil {
		return 0, streamsErr("enqueue", err)
	}
	return seq, nil
}

// publishBatch publishes msgs as one atomic batch and returns the sequence of its last message (0 when the
// batch had been stored by an earlier attempt).
func (s *Streams) publishBatch(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	batch := rand.Text()
	for i, m := range msgs {
		m.Header.Set("Nats-Batch-Id", batch)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		m.Header.Del("Nats-Batch-Commit")
		if i == len(msgs)-1 {
			break
		}
		// The stream leader stages the messages in order; a gap makes the commit fail as incomplete.
		if err := s.nc.PublishMsg(m); err != nil {
			return 0, err
		}
	}
	commit := msgs[len(msgs)-1]
	commit.Header.Set("Nats-Batch-Commit", "1")
	ack, err := s.request(ctx, commit)
	var api *jetstream.APIError
	if errors.As(err, &api) && api.ErrorCode == queueErrBatchHasDup {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return ack.Seq, nil
}

// request publishes m to the queue stream and returns JetStream's acknowledgement.
func (s *Streams) request(ctx context.Context, m *nats.Msg) (*queuePubAck, error) {
	reply, err := s.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		return nil, err
	}
	var ack queuePubAck
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return nil, fmt.Errorf("decode the acknowledgement of %s: %w", m.Subject, err)
	}
	if ack.Error != nil {
		return nil, ack.Error
	}
	return &ack, nil
}

// withdraw deletes the SETs of batches a failed Enqueue stored.
func (s *Streams) withdraw(ctx context.Context, stored [][2]uint64) error {
	var seqs []uint64
	for _, span := range stored {
		for seq := span[0]; seq <= span[1]; seq++ {
			seqs = append(seqs, seq)
		}
	}
	err := streamsEach(context.WithoutCancel(ctx), len(seqs), func(ctx context.Context, i int) error {
		err := streamsRetry(ctx, func(ctx context.Context) error { return s.queue.DeleteMsg(ctx, seqs[i]) })
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("jetstream: enqueue: withdraw the %d SETs already stored: %w", len(seqs), err)
	}
	return nil
}

// Pending returns up to limit unacknowledged SETs of a stream, oldest first, and whether more are waiting.
//
// One batch direct get, which any replica answers, returns candidates: the stream's first limit+1 messages as
// that replica knows them. The leader then confirms each candidate by sequence (many requests in flight), which
// drops the SETs a lagging replica still holds after their acknowledgement, and reads on from the last
// candidate, one message get at a time, which adds the SETs the replica had not applied yet. A replica applies
// the log in order, so what it misses can only come after its candidates. With a current replica this costs
// one direct get, limit+1 leader gets in parallel and one more; without candidates it is limit+1 leader gets
// in a row.
func (s *Streams) Pending(ctx context.Context, id streams.ID, limit int) ([]streams.Item, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	limit = max(limit, 0)
	want, filter := limit+1, s.names.queueFilter(id)
	cands := s.candidates(ctx, filter, want)
	msgs := make([]*streamsStoredMsg, len(cands))
	err := streamsEach(ctx, len(cands), func(ctx context.Context, i int) error {
		m, err := s.leaderGet(ctx, s.queue, streamsMsgGet{Seq: cands[i].Seq})
		if m != nil && m.Subject == cands[i].Subject {
			msgs[i] = m
		}
		return err
	})
	if err != nil {
		return nil, false, streamsErr("read the queue of stream "+string(id), err)
	}
	msgs = slices.DeleteFunc(msgs, func(m *streamsStoredMsg) bool { return m == nil })
	var after uint64
	if len(cands) > 0 {
		after = cands[len(cands)-1].Seq
	}
	for len(msgs) < want {
		m, err := s.leaderGet(ctx, s.queue, streamsMsgGet{Seq: after + 1, NextFor: filter})
		if err != nil {
			return nil, false, streamsErr("read the queue of stream "+string(id), err)
		}
		if m == nil {
			break
		}
		msgs, after = append(msgs, m), m.Seq
	}
	items := make([]streams.Item, 0, min(len(msgs), limit))
	for _, m := range msgs[:min(len(msgs), limit)] {
		var rec queueRecord
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			return nil, false, fmt.Errorf("jetstream: decode queued SET %d of stream %s: %w", m.Seq, id, err)
		}
		items = append(items, streams.Item{Stream: id, JTI: rec.JTI, SET: rec.SET, Queued: rec.Queued})
	}
	return items, len(msgs) > limit, nil
}

// queueDirectGet is the request of a batch direct get ($JS.API.DIRECT.GET.<stream>).
type queueDirectGet struct {
	NextFor  string `json:"next_by_subj"`
	Batch    int    `json:"batch"`
	MaxBytes int    `json:"max_bytes"`
}

// candidates asks any replica of the queue stream (a batch direct get) for the first want messages on filter,
// oldest first. A replica may lag behind the leader, so they are only candidates; on any failure there are
// fewer or none.
func (s *Streams) candidates(ctx context.Context, filter string, want int) []*streamsStoredMsg {
	ctx, cancel := context.WithTimeout(ctx, queueCandidatesTimeout)
	defer cancel()
	inbox := s.nc.NewInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return nil
	}
	defer func() { _ = sub.Unsubscribe() }()
	req, err := json.Marshal(queueDirectGet{NextFor: filter, Batch: want, MaxBytes: queueCandidatesMaxBytes})
	if err != nil || s.nc.PublishRequest("$JS.API.DIRECT.GET."+s.names.queueStream(), inbox, req) != nil {
		return nil
	}
	var out []*streamsStoredMsg
	for len(out) < want {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil || m.Header.Get("Status") != "" { // 204 ends the batch, 404 finds nothing
			break
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			break
		}
		out = append(out, &streamsStoredMsg{Subject: m.Header.Get(jetstream.SubjectHeader), Seq: seq, Data: m.Data})
	}
	return out
}

// Ack removes acknowledged SETs by purging their subjects; an unknown jti is ignored.
func (s *Streams) Ack(ctx context.Context, id streams.ID, jtis []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := streamsEach(ctx, len(jtis), func(ctx context.Context, i int) error {
		return s.purge(ctx, s.queue, s.names.queueSubject(id, jtis[i]))
	})
	if err != nil {
		return streamsErr("acknowledge SETs of stream "+string(id), err)
	}
	return nil
}

// Depth returns the number of unacknowledged SETs of a stream, counted by the leader of the queue stream
// (STREAM.INFO with a subject filter lists one subject per SET: the reply grows with the depth).
func (s *Streams) Depth(ctx context.Context, id streams.ID) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := streamsRetry(ctx, func(ctx context.Context) error {
		info, err := s.queue.Info(ctx, jetstream.WithSubjectFilter(s.names.queueFilter(id)))
		if err != nil {
			return err
		}
		n = 0
		for _, count := range info.State.Subjects {
			n += int(count)
		}
		return nil
	})
	if err != nil {
		return 0, streamsErr("count the queue of stream "+string(id), err)
	}
	return n, nil
}

// Purge removes every queued SET and dead letter of a stream.
func (s *Streams) Purge(ctx context.Context, id streams.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.purge(ctx, s.queue, s.names.queueFilter(id)); err != nil {
		return streamsErr("purge the queue of stream "+string(id), err)
	}
	if err := s.purge(ctx, s.deadStream, s.names.kvSubject(s.names.deadBucket(), s.names.deadKeys(id))); err != nil {
		return streamsErr("purge the dead letters of stream "+string(id), err)
	}
	return nil
}
