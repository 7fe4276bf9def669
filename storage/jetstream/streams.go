package jetstream

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/streams"
)

// streamsCASAttempts bounds the compare-and-sets of one UpdateStream or SetSubject that lose to other writers.
const streamsCASAttempts = 50

// Streams keeps stream configurations, their subjects and their queues for clustered ssfd: it implements
// streams.Store and streams.Queue on one NATS JetStream cluster that every ssfd replica shares (layout in
// names.go). ssfd adds no consensus of its own: every write is one JetStream write, ordered by the RAFT group of
// its stream.
//
//   - Stream configurations and subject entries are KV entries. CreateStream is a create-if-absent; UpdateStream
//     and SetSubject read, change and write back with compare-and-set on the entry's revision, and read again
//     when another replica wrote first. DeleteStream purges the stream's keys, queue and dead letters, leaving
//     no delete markers behind, so the ID is free again at once.
//   - Queued SETs live in one JetStream stream, one subject per SET, in stream sequence order. Enqueue publishes
//     atomic batches (see Enqueue); Ack purges the SETs' subjects.
//
// Reads are read-your-writes: they are answered or confirmed by the leader of the JetStream stream
// ($JS.API.STREAM.MSG.GET, STREAM.INFO), which has applied every write it acknowledged. Direct gets alone are
// not enough: any replica answers them, and on the three-node test cluster under -race about one read in twenty
// right after a write (or a purge) missed it. Pending still uses one batch direct get to find its candidates
// cheaply, then has the leader confirm them (see Pending).
//
// A stream deleted while another replica enqueues to it (or sets a subject on it) may keep what that replica
// wrote after the delete's purge. Stream IDs are random, so nothing sees those leftovers unless a stream is
// created again with the same ID.
//
// Streams uses the account's default JetStream API ($JS.API); it does not own the connection.
type Streams struct {
	nc      *nats.Conn
	names   streamsLayout
	configs jetstream.KeyValue // <Prefix>_streams
	dead    jetstream.KeyValue // <Prefix>_deadletters
	queue   jetstream.Stream   // <Prefix>_QUEUE
	// The streams behind the buckets, for leader reads, subject listings and purges.
	configStream jetstream.Stream
	deadStream   jetstream.Stream
	// batchMax is how many SETs one atomic batch carries: queueBatchMax, or less once the server refused that.
	batchMax atomic.Int64
}

var (
	_ streams.Store = (*Streams)(nil)
	_ streams.Queue = (*Streams)(nil)
)

// OpenStreams creates (or opens, with the same settings) the buckets and the queue stream named by opts, with
// opts.Replicas replicas in file storage. Every replica of a deployment opens them with the same opts.
func OpenStreams(ctx context.Context, nc *nats.Conn, opts Options) (*Streams, error) {
	opts, js, err := open(nc, opts)
	if err != nil {
		return nil, err
	}
	s := &Streams{nc: nc, names: streamsLayout{prefix: opts.Prefix}}
	s.batchMax.Store(queueBatchMax)
	kv := func(bucket, what string) (jetstream.KeyValue, jetstream.Stream, error) {
		b, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, Description: "ssfd: " + what,
			History: 1, Storage: jetstream.FileStorage, Replicas: opts.Replicas})
		if err != nil {
			return nil, nil, fmt.Errorf("jetstream: open bucket %s: %w", bucket, err)
		}
		st, err := js.Stream(ctx, s.names.kvStream(bucket))
		if err != nil {
			return nil, nil, fmt.Errorf("jetstream: open the stream of bucket %s: %w", bucket, err)
		}
		return b, st, nil
	}
	if s.configs, s.configStream, err = kv(s.names.configBucket(), "stream configurations and subjects"); err != nil {
		return nil, err
	}
	if s.dead, s.deadStream, err = kv(s.names.deadBucket(), "dead letters"); err != nil {
		return nil, err
	}
	s.queue, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: s.names.queueStream(), Description: "ssfd: queued SETs, one subject per SET",
		Subjects: []string{s.names.queueWildcard()}, Storage: jetstream.FileStorage, Replicas: opts.Replicas,
		Retention: jetstream.LimitsPolicy, Duplicates: queueDedupWindow, AllowDirect: true, AllowAtomicPublish: true,
		// Should an operator set limits, a full queue refuses new SETs rather than dropping acknowledged ones.
		Discard: jetstream.DiscardNew,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: open stream %s: %w", s.names.queueStream(), err)
	}
	return s, nil
}

// streamsNotFound is the error of an operation on a stream that does not exist.
func streamsNotFound(id streams.ID) error {
	return fmt.Errorf("%w: stream %s", streams.ErrNotFound, id)
}

// config reads a stream's configuration entry from the leader of the streams bucket; ErrNotFound if none.
func (s *Streams) config(ctx context.Context, id streams.ID) (*streams.Stream, *streamsStoredMsg, error) {
	m, err := s.leaderGet(ctx, s.configStream, streamsMsgGet{LastFor: s.kvKey(s.names.configKey(id))})
	if err != nil {
		return nil, nil, streamsErr("read stream "+string(id), err)
	}
	if m == nil {
		return nil, nil, streamsNotFound(id)
	}
	var st streams.Stream
	if err := json.Unmarshal(m.Data, &st); err != nil {
		return nil, nil, fmt.Errorf("jetstream: decode stream %s: %w", id, err)
	}
	return &st, m, nil
}

// kvKey is the subject of a key (or key filter) of the streams bucket.
func (s *Streams) kvKey(key string) string { return s.names.kvSubject(s.names.configBucket(), key) }

// CreateStream stores a new stream; streams.ErrConflict if its ID exists.
func (s *Streams) CreateStream(ctx context.Context, st *streams.Stream) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("jetstream: encode stream %s: %w", st.ID(), err)
	}
	key := s.names.configKey(st.ID())
	retried := false
	err = streamsRetryDetached(ctx, func(ctx context.Context) error {
		_, err := s.configs.Create(ctx, key, raw)
		if errors.Is(err, jetstream.ErrKeyExists) && retried {
			// An attempt that timed out may have stored it: then the entry holds exactly what we wrote.
			if m, gerr := s.leaderGet(ctx, s.configStream, streamsMsgGet{LastFor: s.kvKey(key)}); gerr == nil && m != nil && bytes.Equal(m.Data, raw) {
				return nil
			}
		}
		retried = true
		return err
	})
	if errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%w: stream %s exists", streams.ErrConflict, st.ID())
	}
	if err != nil {
		return streamsErr("create stream "+string(st.ID()), err)
	}
	return nil
}

// GetStream returns a copy of a stream; streams.ErrNotFound if there is none.
func (s *Streams) GetStream(ctx context.Context, id streams.ID) (*streams.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, _, err := s.config(ctx, id)
	return st, err
}

// ListStreams returns every stream, oldest first (by CreatedAt, then ID, as storage/bolt orders them).
func (s *Streams) ListStreams(ctx context.Context) ([]*streams.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	msgs, err := s.entries(ctx, s.configStream, s.kvKey(s.names.configKeys()))
	if err != nil {
		return nil, streamsErr("list streams", err)
	}
	out := make([]*streams.Stream, 0, len(msgs))
	for _, m := range msgs {
		var st streams.Stream
		if err := json.Unmarshal(m.Data, &st); err != nil {
			return nil, fmt.Errorf("jetstream: decode stream at %s: %w", m.Subject, err)
		}
		out = append(out, &st)
	}
	slices.SortStableFunc(out, func(a, b *streams.Stream) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID()), string(b.ID()))
	})
	return out, nil
}

// UpdateStream reads a stream, lets change modify it and writes it back if nobody wrote it meanwhile; otherwise
// it starts again from the newer stream, so change may run more than once. An error from change writes nothing.
func (s *Streams) UpdateStream(ctx context.Context, id streams.ID, change func(*streams.Stream) error) (*streams.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := s.names.configKey(id)
	for range streamsCASAttempts {
		st, m, err := s.config(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := change(st); err != nil {
			return nil, err
		}
		if st.ID() != id {
			return nil, fmt.Errorf("jetstream: an update may not change the stream ID (%s to %s)", id, st.ID())
		}
		raw, err := json.Marshal(st)
		if err != nil {
			return nil, fmt.Errorf("jetstream: encode stream %s: %w", id, err)
		}
		switch written, err := s.swap(ctx, s.configs, s.configStream, key, m.Seq, raw); {
		case err != nil:
			return nil, streamsErr("update stream "+string(id), err)
		case written:
			return st, nil
		}
	}
	return nil, fmt.Errorf("%w: stream %s: %d updates in a row lost to concurrent ones", streams.ErrConflict, id, streamsCASAttempts)
}

// swap writes raw to key if its revision is still rev (0: if the key is absent). It reports false when another
// writer came first. Once sent, the write runs to its end even if ctx ends meanwhile; a write whose outcome is
// still unknown (it timed out) counts as written if the leader now holds raw under a newer revision.
func (s *Streams) swap(ctx context.Context, kv jetstream.KeyValue, st jetstream.Stream, key string, rev uint64, raw []byte) (bool, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), streamsAttemptTimeout)
	defer cancel()
	var err error
	if rev == 0 {
		_, err = kv.Create(wctx, key, raw)
	} else {
		_, err = kv.Update(wctx, key, raw, rev)
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return false, nil
	case !streamsTransient(err) || ctx.Err() != nil:
		return false, err
	}
	m, gerr := s.leaderGet(ctx, st, streamsMsgGet{LastFor: s.names.kvSubject(kv.Bucket(), key)})
	if gerr != nil {
		return false, errors.Join(err, gerr)
	}
	return m != nil && m.Seq > rev && bytes.Equal(m.Data, raw), nil
}

// DeleteStream removes a stream with its subjects, queued SETs and dead letters; streams.ErrNotFound if there is
// none. It purges the keys rather than deleting them, so no delete marker keeps the ID.
func (s *Streams) DeleteStream(ctx context.Context, id streams.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, _, err := s.config(ctx, id); err != nil {
		return err
	}
	// The configuration goes first: from then on Enqueue and SetSubject refuse the stream.
	if err := s.purge(ctx, s.configStream, s.kvKey(s.names.configKey(id))); err != nil {
		return streamsErr("delete stream "+string(id), err)
	}
	if err := s.purge(ctx, s.configStream, s.kvKey(s.names.subjectKeys(id))); err != nil {
		return streamsErr("delete the subjects of stream "+string(id), err)
	}
	return s.Purge(ctx, id)
}

// streamsSubjectRecord is a subject entry as the streams bucket keeps it, with the order it was first set in.
type streamsSubjectRecord struct {
	// First is the revision that first set the subject, recorded when the entry is first replaced; 0 means the
	// entry's own revision is the first.
	First uint64 `json:"first,omitempty"`
	streams.SubjectEntry
}

// SetSubject records a subject entry, replacing the entry of an equal subject in place (it keeps the position
// of the first entry); streams.ErrNotFound if there is no such stream.
func (s *Streams) SetSubject(ctx context.Context, id streams.ID, entry streams.SubjectEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, _, err := s.config(ctx, id); err != nil {
		return err
	}
	key := s.names.subjectKey(id, entry.Subject)
	for range streamsCASAttempts {
		m, err := s.leaderGet(ctx, s.configStream, streamsMsgGet{LastFor: s.kvKey(key)})
		if err != nil {
			return streamsErr("read a subject of stream "+string(id), err)
		}
		rec := streamsSubjectRecord{SubjectEntry: entry}
		var rev uint64
		if m != nil {
			var old streamsSubjectRecord
			if err := json.Unmarshal(m.Data, &old); err != nil {
				return fmt.Errorf("jetstream: decode a subject of stream %s: %w", id, err)
			}
			rev, rec.First = m.Seq, old.First
			if rec.First == 0 {
				rec.First = m.Seq
			}
		}
		raw, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("jetstream: encode a subject of stream %s: %w", id, err)
		}
		switch written, err := s.swap(ctx, s.configs, s.configStream, key, rev, raw); {
		case err != nil:
			return streamsErr("set a subject of stream "+string(id), err)
		case written:
			return nil
		}
	}
	return fmt.Errorf("%w: a subject of stream %s: %d writes in a row lost to concurrent ones", streams.ErrConflict, id, streamsCASAttempts)
}

// Subjects lists a stream's subject entries in the order they were first set; streams.ErrNotFound if there is
// no such stream.
func (s *Streams) Subjects(ctx context.Context, id streams.ID) ([]streams.SubjectEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, _, err := s.config(ctx, id); err != nil {
		return nil, err
	}
	msgs, err := s.entries(ctx, s.configStream, s.kvKey(s.names.subjectKeys(id)))
	if err != nil {
		return nil, streamsErr("list the subjects of stream "+string(id), err)
	}
	type ordered struct {
		first uint64
		entry streams.SubjectEntry
	}
	recs := make([]ordered, 0, len(msgs))
	for _, m := range msgs {
		var rec streamsSubjectRecord
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			return nil, fmt.Errorf("jetstream: decode a subject of stream %s: %w", id, err)
		}
		if rec.First == 0 {
			rec.First = m.Seq
		}
		recs = append(recs, ordered{rec.First, rec.SubjectEntry})
	}
	slices.SortFunc(recs, func(a, b ordered) int { return cmp.Compare(a.first, b.first) })
	out := make([]streams.SubjectEntry, len(recs))
	for i, r := range recs {
		out[i] = r.entry
	}
	return out, nil
}
