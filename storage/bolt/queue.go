package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssfd/ssfd/streams"
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
// (and, with a commit window, what arrives within it; with a commit delay, what arrives while fewer writers than
// usual are in the batch) goes into one transaction.
func (db *DB) writer() {
	defer close(db.done)
	var waits delayState
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
		if db.delay > 0 && db.window == 0 && len(batch) >= 2 {
			batch = db.delayed(batch, n, &waits)
		}
		waits.observe(len(batch), time.Now())
		db.commit(batch)
	}
}

// delayState is what the writer remembers of recent commits for the commit delay: peak is the largest number of
// requests a recent commit carried, halving every peakHalfLife, i.e. how many writers write at once when they
// wait for each other. It decays with time, not per commit, so that after a burst a lightly loaded server soon
// stops waiting; decaying by 1/16 per commit settled on small batches under steady load and lost a tenth of the
// one-stream emit rate.
type delayState struct {
	peak float64
	at   time.Time
}

// peakHalfLife is how fast delayState forgets a large batch.
const peakHalfLife = 200 * time.Millisecond

// usual returns the peak as of now.
func (st *delayState) usual(now time.Time) float64 {
	return st.peak * math.Exp2(-float64(now.Sub(st.at))/float64(peakHalfLife))
}

// observe records a commit of n requests.
func (st *delayState) observe(n int, now time.Time) {
	st.peak, st.at = max(st.usual(now), float64(n)), now
}

// delayed applies the commit delay to batch (holding n items): it waits for more requests while fewer than
// usual are in it. When every writer is already in (callers that only ever write), it does not wait at all.
func (db *DB) delayed(batch []*enqueueRequest, n int, st *delayState) []*enqueueRequest {
	if want := int(st.usual(time.Now()) + 0.5); len(batch) < want {
		batch = db.collect(batch, n, want)
	}
	return batch
}

// collect adds to batch (holding n items) the requests that arrive until it holds want of them, the commit delay
// has passed, or none came for a quarter of it (on an otherwise idle Linux process Go's timers round a sleep of
// less than a millisecond up to one). Up to maxBatchItems.
func (db *DB) collect(batch []*enqueueRequest, n, want int) []*enqueueRequest {
	deadline := time.Now().Add(db.delay)
	gap := db.delay / 4
	timer := time.NewTimer(gap)
	defer timer.Stop()
	for n < maxBatchItems && len(batch) < want {
		select {
		case r, ok := <-db.reqs:
			if !ok {
				return batch
			}
			batch, n = append(batch, r), n+len(r.items)+1
			wait := min(gap, time.Until(deadline))
			if wait <= 0 {
				return batch
			}
			timer.Reset(wait)
		case <-timer.C:
			return batch
		}
	}
	return batch
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

// Pending returns up to max unacknowledged SETs, oldest first, and whether more are waiting.
func (db *DB) Pending(ctx context.Context, id streams.ID, max int) ([]streams.Item, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	var out []streams.Item
	more := false
	err := db.view(func(tx *bbolt.Tx) error {
		return eachQueued(tx, id, func(_, _ []byte, it streams.Item) (bool, error) {
			if len(out) >= max {
				more = true
				return false, nil
			}
			out = append(out, it)
			return true, nil
		})
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
		_, err := remove(tx, id, jtis, false)
		return err
	}})
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
		sets, err := remove(tx, id, jtis, true)
		if err != nil {
			return err
		}
		dead := tx.Bucket(bucketDead)
		for _, e := range errs {
			if set, ok := sets[e.JTI]; ok {
				e.SET = set
			}
			raw, err := json.Marshal(e)
			if err != nil {
				return err
			}
			n, err := dead.NextSequence()
			if err != nil {
				return err
			}
			if err := dead.Put(streamKey(id, seqKey(n)), raw); err != nil {
				return err
			}
		}
		return nil
	})
}

// eachRejected calls fn for every dead letter of a stream named in jtis (all when jtis is empty), with its key;
// fn may delete the key.
func eachRejected(tx *bbolt.Tx, id streams.ID, jtis []string, fn func(k []byte, e streams.DeliveryError) error) error {
	want := map[string]bool{}
	for _, j := range jtis {
		want[j] = true
	}
	var keys [][]byte
	var entries []streams.DeliveryError
	prefix := streamKey(id, nil)
	c := tx.Bucket(bucketDead).Cursor()
	for k, raw := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, raw = c.Next() {
		var e streams.DeliveryError
		if err := json.Unmarshal(raw, &e); err != nil {
			return err
		}
		if len(want) == 0 || want[e.JTI] {
			keys = append(keys, append([]byte(nil), k...))
			entries = append(entries, e)
		}
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
		return eachRejected(tx, id, jtis, func(k []byte, e streams.DeliveryError) error {
			if e.SET == "" {
				return nil
			}
			if err := writeItems(tx, []streams.Item{{Stream: id, JTI: e.JTI, SET: e.SET, Queued: time.Now()}}); err != nil {
				return err
			}
			moved++
			return tx.Bucket(bucketDead).Delete(k)
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
		return eachRejected(tx, id, jtis, func(k []byte, _ streams.DeliveryError) error {
			dropped++
			return tx.Bucket(bucketDead).Delete(k)
		})
	})
	return dropped, err
}

// Rejected lists the dead letters of a stream, oldest first.
func (db *DB) Rejected(ctx context.Context, id streams.ID) ([]streams.DeliveryError, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []streams.DeliveryError{}
	err := db.view(func(tx *bbolt.Tx) error {
		return eachRejected(tx, id, nil, func(_ []byte, e streams.DeliveryError) error {
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
		prefix := streamKey(id, nil)
		c := tx.Bucket(bucketIndex).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// Purge removes every SET and dead letter of a stream.
func (db *DB) Purge(ctx context.Context, id streams.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.update(func(tx *bbolt.Tx) error { return purge(tx, id, false) })
}
