package bolt

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/ssfd/ssfd/streams"
)

// Bucket names of the file layout; the queue's are in log.go.
var (
	bucketMeta     = []byte("meta")
	bucketStreams  = []byte("streams")  // stream id → JSON streams.Stream
	bucketSubjects = []byte("subjects") // stream id → {bykey: subject key → seq, byseq: seq → JSON entry}
	keySchema      = []byte("schema")
	schemaVersion  = []byte("2") // 2: one log for every stream's SETs (log.go)
)

// batchDelay is how long a batch transaction waits for company; token exchanges wait on it.
const batchDelay = time.Millisecond

// commitDelay is how long a group commit that starts under concurrent writes waits for more (WithCommitDelay).
const commitDelay = time.Millisecond

// ErrLocked is returned by Open when another process holds the database file.
var ErrLocked = errors.New("bolt: the database file is locked by another process")

// DB is the embedded store: one bbolt file that implements streams.Store and streams.Queue. Queue writes are
// group-committed by one writer goroutine: every Enqueue waiting while a commit runs goes into the next
// transaction, so there is one fsync per batch rather than per SET.
type DB struct {
	db         *bbolt.DB
	window     time.Duration
	delay      time.Duration
	timeout    time.Duration
	noSync     bool
	batchDelay time.Duration

	mu     sync.RWMutex // guards closed against senders on reqs
	closed bool
	reqs   chan *enqueueRequest
	done   chan struct{}
}

var (
	_ streams.Store = (*DB)(nil)
	_ streams.Queue = (*DB)(nil)
)

// Option configures Open.
type Option func(*DB)

// WithCommitWindow makes the writer wait up to d for more Enqueue calls before it commits, trading latency for
// larger batches. The default is no wait: batches form from calls that arrive while the previous commit runs.
func WithCommitWindow(d time.Duration) Option { return func(db *DB) { db.window = d } }

// WithCommitDelay makes a group commit that starts with two or more writes waiting, but fewer than commits
// recently carried, wait up to d for more (default 1 ms; 0 turns it off); it stops as soon as it holds as many as
// usual, or none came for a quarter of d. Under load one commit, with its two fdatasyncs and its page writes, then
// carries several times more SETs, while a lone write never waits, and writers that are all in the batch already
// do not wait either, except for about a second after a burst of many more (the usual number halves every
// 200 ms). It is PostgreSQL's commit_delay, with commit_siblings = 2 and a stop once the usual company is in.
func WithCommitDelay(d time.Duration) Option { return func(db *DB) { db.delay = d } }

// WithTimeout sets how long Open waits for the file lock (default 1 s).
func WithTimeout(d time.Duration) Option { return func(db *DB) { db.timeout = d } }

// WithoutSync skips fsync on commit: for a cache rebuilt from a log of record on every open (storage/jetstream's
// State), never for a store of record, which a crash could then lose writes from.
func WithoutSync() Option { return func(db *DB) { db.noSync = true } }

// WithBatchDelay sets how long a batched write waits for company (default 1 ms); a single writer applying one
// command at a time wants none.
func WithBatchDelay(d time.Duration) Option { return func(db *DB) { db.batchDelay = d } }

// defaultMmapSize is how much of the file is mapped from the start: address space, not memory (pages are read
// in as they are touched). Without it a growing file is remapped at every doubling, and each remap stalls every
// reader until it is done, and cannot start while a read transaction is open: a queue filling up made 100 push
// workers wait about 4 ms each for their stream reads, and a long read (a copy of the whole database) would hold
// up every commit that grows the file and the reads queued behind it.
const defaultMmapSize = 1 << 30

// Open opens (or creates, with mode 0600) the database file at path.
func Open(path string, opts ...Option) (*DB, error) {
	db := &DB{timeout: time.Second, batchDelay: batchDelay, delay: commitDelay, reqs: make(chan *enqueueRequest, 1024), done: make(chan struct{})}
	for _, opt := range opts {
		opt(db)
	}
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: db.timeout, FreelistType: bbolt.FreelistMapType,
		// The freelist is rebuilt on open instead of written on every commit: commits are the hot path.
		NoFreelistSync:  true,
		NoSync:          db.noSync,
		InitialMmapSize: initialMmapSize(),
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	db.db = b
	b.MaxBatchDelay = db.batchDelay
	if err := b.Update(initLayout); err != nil {
		b.Close()
		return nil, fmt.Errorf("bolt: initialise %s: %w", path, err)
	}
	go db.writer()
	return db, nil
}

func initLayout(tx *bbolt.Tx) error {
	for _, name := range append([][]byte{bucketMeta, bucketStreams, bucketSubjects, bucketLog, bucketIndex, bucketJTI, bucketDead,
		bucketSeen, bucketInbox}, issuerBuckets...) {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get(keySchema); {
	case v == nil:
		return meta.Put(keySchema, schemaVersion)
	case string(v) != string(schemaVersion):
		return fmt.Errorf("schema version %s is not %s; this ssfd cannot read the file", v, schemaVersion)
	}
	return nil
}

// Close waits for pending queue writes, stops the writer and closes the file. Calls after Close return
// streams.ErrClosed.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.reqs)
	db.mu.Unlock()
	<-db.done
	return db.db.Close()
}

// view and update run a transaction unless the store is closed.
func (db *DB) view(fn func(*bbolt.Tx) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return streams.ErrClosed
	}
	return db.db.View(fn)
}

// batch runs fn in a transaction bbolt may share with concurrent batch calls: one commit, one fsync, for all of
// them. fn may run twice, so it must only read and write through tx.
func (db *DB) batch(fn func(*bbolt.Tx) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return streams.ErrClosed
	}
	return db.db.Batch(fn)
}

func (db *DB) update(fn func(*bbolt.Tx) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return streams.ErrClosed
	}
	return db.db.Update(fn)
}

// IsRefusedKey reports whether err is bbolt refusing a key or value for its size, or an empty key: a property of
// the data, the same on every copy of it, so a replicated log treats it as the command's outcome, not a failure.
func IsRefusedKey(err error) bool {
	return errors.Is(err, bolterrors.ErrKeyTooLarge) || errors.Is(err, bolterrors.ErrValueTooLarge) ||
		errors.Is(err, bolterrors.ErrKeyRequired)
}

// initialMmapSize is the map size to ask bbolt for: none on Windows, where bbolt grows the file to it.
func initialMmapSize() int {
	if runtime.GOOS == "windows" {
		return 0
	}
	return defaultMmapSize
}
