package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssfd/ssfd/streams"
)

// The queue layout (schema version 2). One log holds the SETs of every stream in the order they were queued; small
// indexes find a stream's SETs in order and a SET by jti. A commit that queues one event for many streams appends
// to the log and touches one index page per stream, instead of rewriting nested buckets per stream.
var (
	bucketLog   = []byte("log")  // seq → stream, queued time, jti, SET
	bucketIndex = []byte("idx")  // stream 0x00 seq → empty: each stream's SETs, oldest first
	bucketJTI   = []byte("jtis") // jti 0x00 stream → seq: time-ordered jtis keep this append-mostly
	bucketDead  = []byte("dead") // stream 0x00 seq → JSON streams.DeliveryError
)

// streamKey returns stream 0x00 suffix, the key of a stream's entry in idx and dead (a prefix with nil suffix).
func streamKey(id streams.ID, suffix []byte) []byte {
	k := make([]byte, 0, len(id)+1+len(suffix))
	k = append(append(k, id...), 0)
	return append(k, suffix...)
}

func jtiKey(id streams.ID, jti string) []byte {
	k := make([]byte, 0, len(jti)+1+len(id))
	k = append(append(k, jti...), 0)
	return append(k, id...)
}

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

// writeItems checks that every stream of the call exists, then appends the items to the log and the indexes.
func writeItems(tx *bbolt.Tx, items []streams.Item) error {
	for _, it := range items {
		if tx.Bucket(bucketStreams).Get([]byte(it.Stream)) == nil {
			return notFound(it.Stream)
		}
	}
	log, idx, jtis := tx.Bucket(bucketLog), tx.Bucket(bucketIndex), tx.Bucket(bucketJTI)
	// Keys that only grow (the log) or grow at the end of their stream's range: fill pages before splitting.
	log.FillPercent, idx.FillPercent, jtis.FillPercent = 0.95, 0.9, 0.9
	for _, it := range items {
		n, err := log.NextSequence()
		if err != nil {
			return err
		}
		seq := seqKey(n)
		if err := log.Put(seq, encodeItem(it)); err != nil {
			return err
		}
		if err := idx.Put(streamKey(it.Stream, seq), []byte{}); err != nil {
			return err
		}
		if err := jtis.Put(jtiKey(it.Stream, it.JTI), seq); err != nil {
			return err
		}
	}
	return nil
}

// encodeItem writes the stream (length-prefixed), the queued time (Unix nanoseconds), the jti (length-prefixed),
// then the SET.
func encodeItem(it streams.Item) []byte {
	b := make([]byte, 0, 2+len(it.Stream)+8+2+len(it.JTI)+len(it.SET))
	b = binary.BigEndian.AppendUint16(b, uint16(len(it.Stream)))
	b = append(b, it.Stream...)
	b = binary.BigEndian.AppendUint64(b, uint64(it.Queued.UnixNano()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(it.JTI)))
	b = append(b, it.JTI...)
	return append(b, it.SET...)
}

func decodeItem(b []byte) (streams.Item, error) {
	corrupt := fmt.Errorf("bolt: corrupt queue item")
	if len(b) < 2 {
		return streams.Item{}, corrupt
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n+8+2 {
		return streams.Item{}, corrupt
	}
	id, rest := streams.ID(b[2:2+n]), b[2+n:]
	queued := time.Unix(0, int64(binary.BigEndian.Uint64(rest[:8])))
	m := int(binary.BigEndian.Uint16(rest[8:10]))
	if len(rest) < 10+m {
		return streams.Item{}, corrupt
	}
	return streams.Item{Stream: id, Queued: queued, JTI: string(rest[10 : 10+m]), SET: string(rest[10+m:])}, nil
}

// eachQueued calls fn with the index key, log key and item of every queued SET of a stream, oldest first, until
// fn returns false.
func eachQueued(tx *bbolt.Tx, id streams.ID, fn func(idxKey, seq []byte, it streams.Item) (bool, error)) error {
	prefix := streamKey(id, nil)
	log := tx.Bucket(bucketLog)
	c := tx.Bucket(bucketIndex).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		seq := k[len(prefix):]
		it, err := decodeItem(log.Get(seq))
		if err != nil {
			return err
		}
		more, err := fn(k, seq, it)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// remove deletes the queued SETs of a stream with the given jtis. With sets, it returns the SETs of those that
// were there (dead letters keep them); without, it decodes nothing and returns nil (acknowledgements, purges).
func remove(tx *bbolt.Tx, id streams.ID, jtis []string, sets bool) (map[string]string, error) {
	var found map[string]string
	if sets {
		found = map[string]string{}
	}
	log, idx, index := tx.Bucket(bucketLog), tx.Bucket(bucketIndex), tx.Bucket(bucketJTI)
	for _, jti := range jtis {
		key := jtiKey(id, jti)
		seq := index.Get(key)
		if seq == nil {
			continue
		}
		seq = append([]byte(nil), seq...)
		if sets {
			it, err := decodeItem(log.Get(seq))
			if err != nil {
				return nil, err
			}
			found[jti] = it.SET
		}
		for _, del := range []struct {
			b *bbolt.Bucket
			k []byte
		}{{log, seq}, {idx, streamKey(id, seq)}, {index, key}} {
			if err := del.b.Delete(del.k); err != nil {
				return nil, err
			}
		}
	}
	return found, nil
}

// purge drops the queued SETs and dead letters of a stream, and with subjects its subjects too.
func purge(tx *bbolt.Tx, id streams.ID, subjects bool) error {
	var jtis []string
	if err := eachQueued(tx, id, func(_, _ []byte, it streams.Item) (bool, error) {
		jtis = append(jtis, it.JTI)
		return true, nil
	}); err != nil {
		return err
	}
	if _, err := remove(tx, id, jtis, false); err != nil {
		return err
	}
	if err := eachRejected(tx, id, nil, func(k []byte, _ streams.DeliveryError) error {
		return tx.Bucket(bucketDead).Delete(k)
	}); err != nil {
		return err
	}
	if subjects && tx.Bucket(bucketSubjects).Bucket([]byte(id)) != nil {
		return tx.Bucket(bucketSubjects).DeleteBucket([]byte(id))
	}
	return nil
}
