// Package lease shares work among ssfd replicas without a singleton: keys (stream IDs, named jobs such as the
// issuer outbox) hash onto a fixed set of partitions, each partition is a lease in a JetStream KV bucket with a
// TTL, and every live replica holds its fair share of them. The replica holding a key's partition does that
// key's work; when it dies its leases expire and the others take them over. JetStream's compare-and-set on KV
// revisions is the only coordination: ssfd adds no consensus of its own.
//
// lease must not import transmitter, receiver or issuer.
package lease

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Partitions is how many leases the work is split into. Every replica of a deployment must use the same number,
// so it is a constant: 64 spreads the work evenly over up to a few dozen replicas.
const Partitions = 64

// Timing of the leases. A lease lives TTL in the bucket after its last renewal; its holder renews every Renew
// and stops working on it Margin before it could expire, so the next holder never starts before the last one
// stopped (as long as the holder's process is not paused for longer than Margin).
const (
	TTL    = 6 * time.Second
	Renew  = 2 * time.Second
	Margin = 2 * time.Second
)

// Partition returns the partition of key.
func Partition(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % Partitions)
}

// Set is the leases held by one replica. It implements the ownership that transmitter.Workers asks about.
type Set struct {
	kv  jetstream.KeyValue
	id  string
	log *slog.Logger

	mu      sync.Mutex
	held    map[int]*held
	gain    []func()
	changed chan struct{} // closed and replaced whenever held changes
}

// held is one partition this replica holds: the revision to renew from, the context its work runs under, and
// the work still running under it.
type held struct {
	rev    uint64
	ctx    context.Context
	cancel context.CancelFunc
	expire *time.Timer    // cancels the work Margin before the lease could expire unrenewed
	until  time.Time      // when that is; a timer firing while a renewal moved it on does nothing
	work   sync.WaitGroup // one per Acquire not yet released
}

var idShape = strings.NewReplacer(".", "_", " ", "_", "*", "_", ">", "_", "/", "_")

// Open creates or opens the lease bucket <prefix>_leases (replicas as given) for the replica named id; Run
// takes and renews the leases.
func Open(ctx context.Context, nc *nats.Conn, prefix string, replicas int, id string, log *slog.Logger) (*Set, error) {
	if id == "" {
		return nil, errors.New("lease: a replica needs an id")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("lease: JetStream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      prefix + "_leases",
		Description: "ssfd work ownership: one key per partition, held by one replica, expiring unless renewed",
		TTL:         TTL,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("lease: create bucket %s_leases: %w", prefix, err)
	}
	return &Set{kv: kv, id: idShape.Replace(id), log: log, held: map[int]*held{}, changed: make(chan struct{})}, nil
}

// ID is the replica's name in the bucket.
func (s *Set) ID() string { return s.id }

// Own reports whether this replica holds key's partition now and returns a context that ends when it stops
// holding it.
func (s *Set) Own(key string) (context.Context, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.held[Partition(key)]
	if !ok || h.ctx.Err() != nil {
		return nil, false
	}
	return h.ctx, true
}

// Acquire is Own for work that says when it has stopped: a partition given back (to a replica that joined, or
// at shutdown) is handed over only after every release of its work was called, or Margin passed, so that work
// that was settling (a push whose acknowledgement is being stored) is not done again by the next holder.
// release may be called more than once.
func (s *Set) Acquire(key string) (ctx context.Context, release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.held[Partition(key)]
	if !ok || h.ctx.Err() != nil {
		return nil, nil, false
	}
	h.work.Add(1)
	var once sync.Once
	return h.ctx, func() { once.Do(h.work.Done) }, true
}

// OnGain registers f, called (on its own goroutine) each time this replica takes partitions it did not hold.
func (s *Set) OnGain(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gain = append(s.gain, f)
}

// Wait blocks until this replica holds key's partition, then returns the context of that holding; it returns
// ctx's error when ctx ends first.
func (s *Set) Wait(ctx context.Context, key string) (context.Context, error) {
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if c, ok := s.Own(key); ok {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

// Held returns how many partitions this replica holds.
func (s *Set) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}

// Run announces the replica, takes its share of the partitions and renews them every Renew until ctx ends; it
// then gives every lease back so that the other replicas take over at once instead of after the TTL.
func (s *Set) Run(ctx context.Context) {
	t := time.NewTicker(Renew)
	defer t.Stop()
	for {
		s.round(ctx)
		select {
		case <-ctx.Done():
			s.releaseAll()
			return
		case <-t.C:
		}
	}
}

// round is one renewal: announce this replica, renew what it holds, give back what is above its share, and
// take free partitions up to it.
func (s *Set) round(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, Renew)
	defer cancel()
	if _, err := s.kv.Put(rctx, "m."+s.id, []byte(strconv.FormatInt(time.Now().UnixMilli(), 10))); err != nil {
		s.log.Warn("lease: cannot announce this replica", "err", err)
	}
	members, taken, err := s.look(rctx)
	if err != nil {
		s.log.Warn("lease: cannot list leases", "err", err)
	}
	s.renew(rctx)
	if err != nil || rctx.Err() != nil {
		return
	}
	share := (Partitions + max(members, 1) - 1) / max(members, 1)
	s.giveBack(share)
	if gained := s.take(rctx, share, taken); gained {
		s.mu.Lock()
		fns := slices.Clone(s.gain)
		s.mu.Unlock()
		for _, f := range fns {
			go f()
		}
	}
}

// look counts the live replicas and lists the partitions some replica holds.
func (s *Set) look(ctx context.Context) (members int, taken map[int]bool, err error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return 0, map[int]bool{}, nil
		}
		return 0, nil, err
	}
	taken = map[int]bool{}
	for k := range lister.Keys() {
		switch {
		case strings.HasPrefix(k, "m."):
			members++
		case strings.HasPrefix(k, "p."):
			if p, err := strconv.Atoi(k[2:]); err == nil {
				taken[p] = true
			}
		}
	}
	return members, taken, nil
}

// renew renews every held lease by compare-and-set on its revision; a lease whose revision moved (it expired
// and someone else took it) is dropped at once.
func (s *Set) renew(ctx context.Context) {
	s.mu.Lock()
	parts := make(map[int]uint64, len(s.held))
	for p, h := range s.held {
		parts[p] = h.rev
	}
	s.mu.Unlock()
	for p, rev := range parts {
		sent := time.Now()
		next, err := s.kv.Update(ctx, partitionKey(p), []byte(s.id), rev)
		s.mu.Lock()
		h, ok := s.held[p]
		switch {
		case !ok:
		case err == nil:
			h.rev, h.until = next, sent.Add(TTL-Margin)
			h.expire.Reset(time.Until(h.until))
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound):
			s.drop(p)
			s.log.Info("lease: lost a partition", "partition", p)
		}
		// Any other error (NATS unreachable): keep working until the expiry timer says the lease may be gone.
		s.mu.Unlock()
	}
}

// giveBack releases held partitions above share (all of them for 0), so that a replica that joined gets its part.
func (s *Set) giveBack(share int) {
	s.mu.Lock()
	var extra []int
	for p := range s.held {
		extra = append(extra, p)
	}
	s.mu.Unlock()
	if len(extra) <= share {
		return
	}
	slices.Sort(extra)
	var wg sync.WaitGroup
	for _, p := range extra[share:] {
		wg.Go(func() { s.release(p) })
	}
	wg.Wait()
}

// take creates free partitions' leases until this replica holds share of them, and reports whether it took any.
func (s *Set) take(ctx context.Context, share int, taken map[int]bool) bool {
	gained := false
	for _, p := range rand.Perm(Partitions) {
		if s.Held() >= share {
			break
		}
		if taken[p] {
			continue
		}
		sent := time.Now()
		rev, err := s.kv.Create(ctx, partitionKey(p), []byte(s.id))
		if err != nil {
			continue // someone was faster, or NATS is unreachable: next round
		}
		hctx, cancel := context.WithCancel(context.Background())
		h := &held{rev: rev, ctx: hctx, cancel: cancel, until: sent.Add(TTL - Margin)}
		s.mu.Lock()
		h.expire = time.AfterFunc(time.Until(h.until), func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.held[p] == h && !time.Now().Before(h.until) {
				s.drop(p)
				s.log.Warn("lease: a partition's lease could not be renewed in time; its work stops", "partition", p)
			}
		})
		s.held[p] = h
		s.signal()
		s.mu.Unlock()
		gained = true
	}
	return gained
}

// release stops the work of partition p and, once that work has stopped (or Margin passed, well inside the
// lease's life), deletes its lease so that the next holder need not wait for it to expire. The delete names
// this replica's revision: a lease someone else holds by then is left alone.
func (s *Set) release(p int) {
	s.mu.Lock()
	h, ok := s.held[p]
	if ok {
		s.drop(p)
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	stopped := make(chan struct{})
	go func() { h.work.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(Margin):
		s.log.Warn("lease: work on a partition given back did not stop in time; handing it over anyway", "partition", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Renew)
	defer cancel()
	_ = s.kv.Delete(ctx, partitionKey(p), jetstream.LastRevision(h.rev))
}

// releaseAll gives every lease back and takes this replica off the member list.
func (s *Set) releaseAll() {
	s.giveBack(0)
	ctx, cancel := context.WithTimeout(context.Background(), Renew)
	defer cancel()
	_ = s.kv.Delete(ctx, "m."+s.id)
}

// drop forgets partition p and cancels its work; the caller holds s.mu.
func (s *Set) drop(p int) {
	h := s.held[p]
	h.cancel()
	h.expire.Stop()
	delete(s.held, p)
	s.signal()
}

// signal wakes Wait; the caller holds s.mu.
func (s *Set) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func partitionKey(p int) string { return "p." + strconv.Itoa(p) }
