package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssfd/ssfd/streams"
)

func notFound(id streams.ID) error { return fmt.Errorf("%w: stream %s", streams.ErrNotFound, id) }

func getStream(tx *bbolt.Tx, id streams.ID) (*streams.Stream, error) {
	raw := tx.Bucket(bucketStreams).Get([]byte(id))
	if raw == nil {
		return nil, notFound(id)
	}
	var s streams.Stream
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("bolt: decode stream %s: %w", id, err)
	}
	return &s, nil
}

func putStream(tx *bbolt.Tx, s *streams.Stream) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketStreams).Put([]byte(s.ID()), raw)
}

// CreateStream stores a new stream; streams.ErrConflict if its ID exists.
func (db *DB) CreateStream(ctx context.Context, s *streams.Stream) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketStreams).Get([]byte(s.ID())) != nil {
			return fmt.Errorf("%w: stream %s exists", streams.ErrConflict, s.ID())
		}
		return putStream(tx, s)
	})
}

// GetStream returns a copy of a stream.
func (db *DB) GetStream(ctx context.Context, id streams.ID) (*streams.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var s *streams.Stream
	err := db.view(func(tx *bbolt.Tx) error {
		var err error
		s, err = getStream(tx, id)
		return err
	})
	return s, err
}

// ListStreams returns every stream, oldest first.
func (db *DB) ListStreams(ctx context.Context) ([]*streams.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*streams.Stream
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketStreams).ForEach(func(_, raw []byte) error {
			var s streams.Stream
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			out = append(out, &s)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].ID() < out[j].ID()
		}
		return out[i].CreatedAt.Before(out[j].CreatedAt)
	})
	return out, err
}

// UpdateStream changes a stream in one transaction; an error from change writes nothing.
func (db *DB) UpdateStream(ctx context.Context, id streams.ID, change func(*streams.Stream) error) (*streams.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var s *streams.Stream
	err := db.update(func(tx *bbolt.Tx) error {
		var err error
		if s, err = getStream(tx, id); err != nil {
			return err
		}
		if err := change(s); err != nil {
			return err
		}
		if s.ID() != id {
			return fmt.Errorf("bolt: an update may not change the stream ID")
		}
		return putStream(tx, s)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// DeleteStream removes a stream, its subjects and its queue.
func (db *DB) DeleteStream(ctx context.Context, id streams.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketStreams).Get([]byte(id)) == nil {
			return notFound(id)
		}
		if err := tx.Bucket(bucketStreams).Delete([]byte(id)); err != nil {
			return err
		}
		return purge(tx, id, true)
	})
}

// SetSubject records a subject entry, replacing the entry of an equal subject in place.
func (db *DB) SetSubject(ctx context.Context, id streams.ID, entry streams.SubjectEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	raw, err := json.Marshal(entry)
	if err != nil {
		return err
	}
	return db.update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketStreams).Get([]byte(id)) == nil {
			return notFound(id)
		}
		sb, err := tx.Bucket(bucketSubjects).CreateBucketIfNotExists([]byte(id))
		if err != nil {
			return err
		}
		bykey, err := sb.CreateBucketIfNotExists([]byte("bykey"))
		if err != nil {
			return err
		}
		byseq, err := sb.CreateBucketIfNotExists([]byte("byseq"))
		if err != nil {
			return err
		}
		key := []byte(entry.Subject.Key())
		seq := bykey.Get(key)
		if seq == nil {
			n, err := byseq.NextSequence()
			if err != nil {
				return err
			}
			seq = seqKey(n)
			if err := bykey.Put(key, seq); err != nil {
				return err
			}
		}
		return byseq.Put(seq, raw)
	})
}

// Subjects lists a stream's subject entries in the order they were first set.
func (db *DB) Subjects(ctx context.Context, id streams.ID) ([]streams.SubjectEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []streams.SubjectEntry{}
	err := db.view(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketStreams).Get([]byte(id)) == nil {
			return notFound(id)
		}
		sb := tx.Bucket(bucketSubjects).Bucket([]byte(id))
		if sb == nil || sb.Bucket([]byte("byseq")) == nil {
			return nil
		}
		return sb.Bucket([]byte("byseq")).ForEach(func(_, raw []byte) error {
			var e streams.SubjectEntry
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("bolt: decode subject of %s: %w", id, err)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}
