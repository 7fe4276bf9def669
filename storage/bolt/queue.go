package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssfd/ssfd/streams"
)

var (
	bucketItems    = []byte("items")    // seq → encoded item
	bucketJTIs     = []byte("jti")      // jti → seq
	bucketRejected = []byte("rejected") // seq → JSON streams.DeliveryError
)

// maxBatchItems caps how many SETs one group commit writes.
const maxBatchItems = 10_000

// enqueueRequest is one call waiting for the writer: an Enqueue (items) or an acknowledgement (run).
type enqueueRequest struct {
	items []streams.Item
	run   func(*bbolt.Tx) error
	err   error
	done  chan struct{}
}

// Enqueue stores items durably: it returns once the transaction holding them has been committed (and fsynced).
// Either every item of the call is stored or none is; a call naming a stream that does not exist fails with
// streams.ErrNotFound without affecting other calls committed in the same transaction.
func (db *DB) Enqueue(ctx context.Context, items []streams.Item) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, it := range items {
		if it.Stream == "" || it.JTI == "" || it.SET == "" {
			return fmt.Errorf("bolt: item %d needs a stream, a jti and a SET", i)
		}
	}
	if len(items) == 0 {
		return nil
	}
	return db.submit(&enqueueRequest{items: items, done: make(chan struct{})})
}

// submit hands a request to the writer and waits for the commit that holds it.
func (db *DB) submit(req *enqueueRequest) error {
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return streams.ErrClosed
	}
	db.reqs <- req
	db.mu.RUnlock()
	<-req.done // once handed over, the write happens whatever ctx says: wait for its outcome
	return req.err
}

// writer commits pending requests in groups until Close: everything that arrived while the previous commit ran
// (and, with a commit window, what arrives within it) goes into one transaction.
func (db *DB) writer() {
	defer close(db.done)
	for first := range db.reqs {
		batch, n := []*enqueueRequest{first}, len(first.items)+1
		var window <-chan time.Time // nil: drain only what is already waiting
		var timer *time.Timer
		if db.window > 0 {
			timer = time.NewTimer(db.window)
			window = timer.C
		}
	collect:
		for n < maxBatchItems {
			var r *enqueueRequest
			var ok bool
			if window != nil {
				select {
				case r, ok = <-db.reqs:
				case <-window:
					window = nil
					continue
				}
			} else {
				select {
				case r, ok = <-db.reqs:
				default:
					break collect
				}
			}
			if !ok {
				break collect
			}
			batch, n = append(batch, r), n+len(r.items)+1
		}
		if timer != nil {
			timer.Stop()
		}
		db.commit(batch)
	}
}

// commit writes a batch in one transaction and answers every caller.
func (db *DB) commit(batch []*enqueueRequest) {
	err := db.db.Update(func(tx *bbolt.Tx) error {
		for _, r := range batch {
			if r.run != nil {
				r.err = r.run(tx)
			} else {
				r.err = writeItems(tx, r.items)
			}
			if errors.Is(r.err, streams.ErrNotFound) {
				continue // this caller's items were checked before any was written
			}
			if r.err != nil {
				return r.err
			}
		}
		return nil
	})
	for _, r := range batch {
		if err != nil {
			r.err = fmt.Errorf("bolt: commit queued SETs: %w", err)
		}
		close(r.done)
	}
}

// writeItems checks that every stream of the call exists, then appends the items to their queues.
func writeItems(tx *bbolt.Tx, items []streams.Item) error {
	for _, it := range items {
		if tx.Bucket(bucketStreams).Get([]byte(it.Stream)) == nil {
			return notFound(it.Stream)
		}
	}
	for _, it := range items {
		q, err := queueBucket(tx, it.Stream, true)
		if err != nil {
			return err
		}
		// Sequence keys only ever grow, and transmitter jtis are time-ordered: fill pages before splitting them.
		q.Bucket(bucketItems).FillPercent = 0.95
		q.Bucket(bucketJTIs).FillPercent = 0.95
		n, err := q.Bucket(bucketItems).NextSequence()
		if err != nil {
			return err
		}
		seq := seqKey(n)
		if err := q.Bucket(bucketItems).Put(seq, encodeItem(it)); err != nil {
			return err
		}
		if err := q.Bucket(bucketJTIs).Put([]byte(it.JTI), seq); err != nil {
			return err
		}
	}
	return nil
}

// queueBucket returns a stream's queue bucket, creating it (and its sub-buckets) when create is set; nil when
// it does not exist and create is not set.
func queueBucket(tx *bbolt.Tx, id streams.ID, create bool) (*bbolt.Bucket, error) {
	parent := tx.Bucket(bucketQueues)
	if q := parent.Bucket([]byte(id)); q != nil || !create {
		return q, nil
	}
	q, err := parent.CreateBucket([]byte(id))
	if err != nil {
		return nil, err
	}
	for _, name := range [][]byte{bucketItems, bucketJTIs, bucketRejected} {
		if _, err := q.CreateBucket(name); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// encodeItem writes queued time (unix nanoseconds), the jti length and jti, then the SET.
func encodeItem(it streams.Item) []byte {
	b := make([]byte, 0, 8+2+len(it.JTI)+len(it.SET))
	b = binary.BigEndian.AppendUint64(b, uint64(it.Queued.UnixNano()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(it.JTI)))
	b = append(b, it.JTI...)
	return append(b, it.SET...)
}

func decodeItem(id streams.ID, b []byte) (streams.Item, error) {
	if len(b) < 10 {
		return streams.Item{}, fmt.Errorf("bolt: corrupt queue item of %s", id)
	}
	n := int(binary.BigEndian.Uint16(b[8:10]))
	if len(b) < 10+n {
		return streams.Item{}, fmt.Errorf("bolt: corrupt queue item of %s", id)
	}
	return streams.Item{
		Stream: id,
		Queued: time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))),
		JTI:    string(b[10 : 10+n]),
		SET:    string(b[10+n:]),
	}, nil
}

// Pending returns up to max unacknowledged SETs, oldest first, and whether more are waiting.
func (db *DB) Pending(ctx context.Context, id streams.ID, max int) ([]streams.Item, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	var out []streams.Item
	more := false
	err := db.view(func(tx *bbolt.Tx) error {
		q, _ := queueBucket(tx, id, false)
		if q == nil {
			return nil
		}
		c := q.Bucket(bucketItems).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(out) >= max {
				more = true
				return nil
			}
			it, err := decodeItem(id, v)
			if err != nil {
				return err
			}
			out = append(out, it)
		}
		return nil
	})
	return out, more, err
}

// Ack removes acknowledged SETs; unknown jtis are ignored. Acknowledgements are group-committed with queue
// writes, so that many streams acknowledging at once share one fsync.
func (db *DB) Ack(ctx context.Context, id streams.ID, jtis []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.submit(&enqueueRequest{done: make(chan struct{}), run: func(tx *bbolt.Tx) error {
		_, err := remove(tx, id, jtis)
		return err
	}})
}

// remove deletes the items with the given jtis and returns the SETs of those that were present.
func remove(tx *bbolt.Tx, id streams.ID, jtis []string) (map[string]string, error) {
	found := map[string]string{}
	q, _ := queueBucket(tx, id, false)
	if q == nil {
		return found, nil
	}
	for _, jti := range jtis {
		seq := q.Bucket(bucketJTIs).Get([]byte(jti))
		if seq == nil {
			continue
		}
		it, err := decodeItem(id, q.Bucket(bucketItems).Get(seq))
		if err != nil {
			return nil, err
		}
		if err := q.Bucket(bucketItems).Delete(seq); err != nil {
			return nil, err
		}
		if err := q.Bucket(bucketJTIs).Delete([]byte(jti)); err != nil {
			return nil, err
		}
		found[jti] = it.SET
	}
	return found, nil
}

// Reject moves SETs to the stream's dead letters with the reasons given.
func (db *DB) Reject(ctx context.Context, id streams.ID, errs []streams.DeliveryError) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.update(func(tx *bbolt.Tx) error {
		jtis := make([]string, len(errs))
		for i, e := range errs {
			jtis[i] = e.JTI
		}
		sets, err := remove(tx, id, jtis)
		if err != nil {
			return err
		}
		q, err := queueBucket(tx, id, true)
		if err != nil {
			return err
		}
		for _, e := range errs {
			if set, ok := sets[e.JTI]; ok {
				e.SET = set
			}
			raw, err := json.Marshal(e)
			if err != nil {
				return err
			}
			n, err := q.Bucket(bucketRejected).NextSequence()
			if err != nil {
				return err
			}
			if err := q.Bucket(bucketRejected).Put(seqKey(n), raw); err != nil {
				return err
			}
		}
		return nil
	})
}

// eachRejected calls fn for every dead letter of a stream named in jtis (all when jtis is empty), with its key;
// fn may delete the key.
func eachRejected(q *bbolt.Bucket, jtis []string, fn func(k []byte, e streams.DeliveryError) error) error {
	want := map[string]bool{}
	for _, j := range jtis {
		want[j] = true
	}
	var keys [][]byte
	var entries []streams.DeliveryError
	if err := q.Bucket(bucketRejected).ForEach(func(k, raw []byte) error {
		var e streams.DeliveryError
		if err := json.Unmarshal(raw, &e); err != nil {
			return err
		}
		if len(want) == 0 || want[e.JTI] {
			keys = append(keys, append([]byte(nil), k...))
			entries = append(entries, e)
		}
		return nil
	}); err != nil {
		return err
	}
	for i := range keys {
		if err := fn(keys[i], entries[i]); err != nil {
			return err
		}
	}
	return nil
}

// Redrive moves dead letters that still have their SET back to the end of the queue.
func (db *DB) Redrive(ctx context.Context, id streams.ID, jtis []string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	moved := 0
	err := db.update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketStreams).Get([]byte(id)) == nil {
			return notFound(id)
		}
		q, _ := queueBucket(tx, id, false)
		if q == nil {
			return nil
		}
		return eachRejected(q, jtis, func(k []byte, e streams.DeliveryError) error {
			if e.SET == "" {
				return nil
			}
			if err := writeItems(tx, []streams.Item{{Stream: id, JTI: e.JTI, SET: e.SET, Queued: time.Now()}}); err != nil {
				return err
			}
			moved++
			return q.Bucket(bucketRejected).Delete(k)
		})
	})
	return moved, err
}

// DropRejected deletes dead letters.
func (db *DB) DropRejected(ctx context.Context, id streams.ID, jtis []string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	dropped := 0
	err := db.update(func(tx *bbolt.Tx) error {
		q, _ := queueBucket(tx, id, false)
		if q == nil {
			return nil
		}
		return eachRejected(q, jtis, func(k []byte, _ streams.DeliveryError) error {
			dropped++
			return q.Bucket(bucketRejected).Delete(k)
		})
	})
	return dropped, err
}

// Rejected lists the recorded delivery errors of a stream, oldest first.
func (db *DB) Rejected(ctx context.Context, id streams.ID) ([]streams.DeliveryError, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []streams.DeliveryError{}
	err := db.view(func(tx *bbolt.Tx) error {
		q, _ := queueBucket(tx, id, false)
		if q == nil {
			return nil
		}
		return q.Bucket(bucketRejected).ForEach(func(_, raw []byte) error {
			var e streams.DeliveryError
			if err := json.Unmarshal(raw, &e); err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// Depth returns the number of unacknowledged SETs of a stream.
func (db *DB) Depth(ctx context.Context, id streams.ID) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := db.view(func(tx *bbolt.Tx) error {
		if q, _ := queueBucket(tx, id, false); q != nil {
			n = q.Bucket(bucketJTIs).Stats().KeyN
		}
		return nil
	})
	return n, err
}

// Purge removes every SET and recorded error of a stream.
func (db *DB) Purge(ctx context.Context, id streams.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.update(func(tx *bbolt.Tx) error { return purge(tx, id, false) })
}
