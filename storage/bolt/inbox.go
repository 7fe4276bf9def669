package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssfd/ssfd/receiver"
)

// The receiver's buckets: the replay window and the inbox of SETs accepted but not yet handled.
var (
	bucketSeen  = []byte("seen")  // iss 0x00 jti → expiry (Unix nanoseconds, 8 bytes)
	bucketInbox = []byte("inbox") // seq → JSON receiver.Entry
)

var _ receiver.Inbox = (*DB)(nil)

func seenKey(iss, jti string) []byte {
	k := make([]byte, 0, len(iss)+1+len(jti))
	return append(append(append(k, iss...), 0), jti...)
}

// Accept stores a verified SET and remembers (iss, jti), through the group commit.
func (db *DB) Accept(ctx context.Context, e receiver.Entry, until time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	fresh := false
	err := db.submit(&enqueueRequest{done: make(chan struct{}), run: func(tx *bbolt.Tx) error {
		seen, inbox := tx.Bucket(bucketSeen), tx.Bucket(bucketInbox)
		key := seenKey(e.Issuer, e.JTI)
		if v := seen.Get(key); len(v) == 8 && time.Unix(0, int64(binary.BigEndian.Uint64(v))).After(e.Received) {
			return nil // a replay inside the window
		}
		n, err := inbox.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = n
		raw, err := json.Marshal(e)
		if err != nil {
			return err
		}
		inbox.FillPercent = 0.95
		if err := inbox.Put(seqKey(n), raw); err != nil {
			return err
		}
		if err := seen.Put(key, binary.BigEndian.AppendUint64(nil, uint64(until.UnixNano()))); err != nil {
			return err
		}
		fresh = true
		return nil
	}})
	return fresh, err
}

// Waiting returns up to max entries after seq after waiting to be handled, oldest first.
func (db *DB) Waiting(ctx context.Context, after uint64, max int) ([]receiver.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []receiver.Entry
	err := db.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketInbox).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			var e receiver.Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Len counts the entries waiting to be handled, from the bucket's page statistics: nothing is decoded.
func (db *DB) Len(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := db.view(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketInbox).Stats().KeyN
		return nil
	})
	return n, err
}

// Handled removes handled entries.
func (db *DB) Handled(ctx context.Context, seqs []uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.submit(&enqueueRequest{done: make(chan struct{}), run: func(tx *bbolt.Tx) error {
		for _, n := range seqs {
			if err := tx.Bucket(bucketInbox).Delete(seqKey(n)); err != nil {
				return err
			}
		}
		return nil
	}})
}

// Forget drops (iss, jti) records that expired before now.
func (db *DB) Forget(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := db.update(func(tx *bbolt.Tx) error {
		seen := tx.Bucket(bucketSeen)
		var expired [][]byte
		if err := seen.ForEach(func(k, v []byte) error {
			if len(v) != 8 || time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(now) {
				expired = append(expired, append([]byte(nil), k...))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range expired {
			if err := seen.Delete(k); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	return n, err
}
