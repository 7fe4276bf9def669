package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/internal/keys"
)

// Rings keeps the signing key rings of a cluster in the KV bucket <Prefix>_keys, one entry per ring, so that
// every replica signs with the same active key and publishes the same JWKS. A rotation is a compare-and-set on
// the ring's entry (two replicas rotating at once rotate it once each, in turn, never losing a key); every
// replica watches the bucket and swaps in the rotated ring. Until a replica has seen a rotation it signs with the
// old active key, which the rotation retired but still publishes, and the new active key was published as the
// next key before: receivers verify both, so the moment of the swap does not matter.
//
// The bucket holds private keys: NATS must restrict it to ssfd's own user (docs/cluster.md).
type Rings struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu    sync.Mutex
	rings map[string]*keys.Ring
	stop  context.CancelFunc
	done  chan struct{}
}

// OpenRings creates or opens the key bucket and starts watching it for rotations made by other replicas.
func OpenRings(ctx context.Context, nc *nats.Conn, opts Options, log *slog.Logger) (*Rings, error) {
	opts, js, err := open(nc, opts)
	if err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      opts.Prefix + "_keys",
		Description: "ssfd signing key rings (private keys): every replica signs with the same active key",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: create bucket %s_keys: %w", opts.Prefix, err)
	}
	wctx, stop := context.WithCancel(context.Background()) // the watch lives until Close, not until ctx ends
	w, err := kv.WatchAll(wctx, jetstream.UpdatesOnly())
	if err != nil {
		stop()
		return nil, fmt.Errorf("jetstream: watch bucket %s_keys: %w", opts.Prefix, err)
	}
	r := &Rings{kv: kv, log: log, rings: map[string]*keys.Ring{}, stop: stop, done: make(chan struct{})}
	go r.follow(wctx, w)
	return r, nil
}

// follow swaps in every ring another replica stored.
func (r *Rings) follow(ctx context.Context, w jetstream.KeyWatcher) {
	defer close(r.done)
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			r.mu.Lock()
			ring := r.rings[e.Key()]
			r.mu.Unlock()
			if ring == nil {
				continue
			}
			if err := ring.Replace(e.Value()); err != nil {
				r.log.Error("jetstream: a stored key ring cannot be read; signing goes on with the old one", "ring", e.Key(), "err", err)
			}
		}
	}
}

// Open returns the ring named name (letters, digits, '-' and '_'), creating it when no replica has yet.
func (r *Rings) Open(ctx context.Context, name string, alg keys.Algorithm) (*keys.Ring, error) {
	for range 3 {
		e, err := r.kv.Get(ctx, name)
		if err == nil {
			ring, err := keys.ParseRing(e.Value())
			if err != nil {
				return nil, fmt.Errorf("jetstream: key ring %s: %w", name, err)
			}
			if ring.Algorithm() != alg {
				return nil, fmt.Errorf("jetstream: key ring %s holds %s keys, not %s", name, ring.Algorithm(), alg)
			}
			r.mu.Lock()
			r.rings[name] = ring
			r.mu.Unlock()
			return ring, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("jetstream: read key ring %s: %w", name, err)
		}
		ring, err := keys.NewRing(alg)
		if err != nil {
			return nil, err
		}
		data, err := ring.MarshalJSON()
		if err != nil {
			return nil, err
		}
		if _, err := r.kv.Create(ctx, name, data); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("jetstream: store key ring %s: %w", name, err)
		}
		// Created, or another replica created it first: read what is stored, so every replica holds the same.
	}
	return nil, fmt.Errorf("jetstream: key ring %s: created and read again, but not found", name)
}

// Rotate rotates the stored ring named name by compare-and-set and swaps the result into ring (as returned by
// Open); a rotation by another replica at the same moment makes it read again and rotate once more.
func (r *Rings) Rotate(ctx context.Context, name string, ring *keys.Ring) error {
	for range 10 {
		e, err := r.kv.Get(ctx, name)
		if err != nil {
			return fmt.Errorf("jetstream: read key ring %s: %w", name, err)
		}
		stored, err := keys.ParseRing(e.Value())
		if err != nil {
			return fmt.Errorf("jetstream: key ring %s: %w", name, err)
		}
		if err := stored.Rotate(); err != nil {
			return err
		}
		data, err := stored.MarshalJSON()
		if err != nil {
			return err
		}
		if _, err := r.kv.Update(ctx, name, data, e.Revision()); err != nil {
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue // another replica rotated first: rotate what it stored
			}
			return fmt.Errorf("jetstream: store rotated key ring %s: %w", name, err)
		}
		return ring.Replace(data)
	}
	return fmt.Errorf("jetstream: key ring %s: too many concurrent rotations", name)
}

// Close stops watching for rotations.
func (r *Rings) Close() {
	r.stop()
	<-r.done
}
