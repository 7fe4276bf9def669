package keys

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// State is where a key stands in its rotation: published before use (Next), signing (Active), or published
// after use for a window (Retired), so receivers know a key before the first SET it signs and after the last
// (spec/ssf.md GO-21).
type State string

// The rotation states.
const (
	Next    State = "next"
	Active  State = "active"
	Retired State = "retired"
)

// DefaultRetireWindow is how long a retired key stays published: the transmitter's redelivery window.
const DefaultRetireWindow = 7 * 24 * time.Hour

// Ring holds the keys of one algorithm through rotation: one active key that signs, one next key already
// published, and retired keys published until their window passes. It is safe for concurrent use; signing takes
// a read lock only.
type Ring struct {
	mu      sync.RWMutex
	alg     Algorithm
	entries []ringEntry
	signer  *Signer // of the active key
	window  time.Duration
	now     func() time.Time
}

type ringEntry struct {
	key       *Key
	state     State
	created   time.Time
	retiredAt time.Time
}

// RingOption configures a Ring.
type RingOption func(*Ring)

// WithRetireWindow sets how long retired keys stay published (default 7 days).
func WithRetireWindow(d time.Duration) RingOption { return func(r *Ring) { r.window = d } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) RingOption { return func(r *Ring) { r.now = now } }

func newRing(alg Algorithm, opts []RingOption) *Ring {
	r := &Ring{alg: alg, window: DefaultRetireWindow, now: time.Now}
	for _, opt := range opts {
		opt(r)
	}
	return r
}

// NewRing returns a ring with a new active key and a new next key.
func NewRing(alg Algorithm, opts ...RingOption) (*Ring, error) {
	r := newRing(alg, opts)
	for _, st := range []State{Active, Next} {
		k, err := Generate(alg)
		if err != nil {
			return nil, err
		}
		r.entries = append(r.entries, ringEntry{key: k, state: st, created: r.now()})
	}
	return r, r.resetSigner()
}

// resetSigner builds the signer of the active key; the caller holds the write lock or owns r.
func (r *Ring) resetSigner() error {
	for _, e := range r.entries {
		if e.state == Active {
			s, err := NewSigner(e.key)
			if err != nil {
				return err
			}
			r.signer = s
			return nil
		}
	}
	return fmt.Errorf("%w: the ring has no active key", ErrInvalidKey)
}

// Algorithm returns the ring's algorithm.
func (r *Ring) Algorithm() Algorithm { return r.alg }

// Active returns the key that signs now.
func (r *Ring) Active() *Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.signer.key
}

// Sign signs payload with the active key.
func (r *Ring) Sign(payload []byte, typ string) (string, error) {
	r.mu.RLock()
	s := r.signer
	r.mu.RUnlock()
	return s.Sign(payload, typ)
}

// Rotate makes the next key active, retires the active one (still published for the retire window), generates a
// new next key, and prunes retired keys whose window has passed.
func (r *Ring) Rotate() error {
	k, err := Generate(r.alg)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for i := range r.entries {
		switch r.entries[i].state {
		case Active:
			r.entries[i].state, r.entries[i].retiredAt = Retired, now
		case Next:
			r.entries[i].state = Active
		}
	}
	r.entries = append(r.entries, ringEntry{key: k, state: Next, created: now})
	r.prune(now)
	return r.resetSigner()
}

// prune drops retired keys whose window has passed; the caller holds the write lock.
func (r *Ring) prune(now time.Time) {
	kept := r.entries[:0]
	for _, e := range r.entries {
		if e.state != Retired || now.Sub(e.retiredAt) < r.window {
			kept = append(kept, e)
		}
	}
	r.entries = kept
}

// published returns the keys to publish now: next, active, and retired ones inside their window.
func (r *Ring) published() []*Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	var out []*Key
	for _, e := range r.entries {
		if e.state != Retired || now.Sub(e.retiredAt) < r.window {
			out = append(out, e.key)
		}
	}
	return out
}

// JWKS returns the published keys.
func (r *Ring) JWKS() *JWKS { return NewJWKS(r.published()...) }

// Key returns a published key by kid, so that a Ring is a KeySource.
func (r *Ring) Key(_ context.Context, kid string) (*Key, error) {
	for _, k := range r.published() {
		if k.kid == kid {
			return k.PublicKey(), nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownKey, kid)
}

type ringFile struct {
	Algorithm Algorithm       `json:"alg"`
	Keys      []ringFileEntry `json:"keys"`
}

type ringFileEntry struct {
	State     State           `json:"state"`
	Created   time.Time       `json:"created"`
	RetiredAt time.Time       `json:"retired_at,omitzero"`
	Key       json.RawMessage `json:"jwk"`
}

// MarshalJSON writes every key with its state and times, private parts included: the format of ring files.
func (r *Ring) MarshalJSON() ([]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f := ringFile{Algorithm: r.alg}
	for _, e := range r.entries {
		raw, err := e.key.MarshalJSON()
		if err != nil {
			return nil, err
		}
		f.Keys = append(f.Keys, ringFileEntry{State: e.state, Created: e.created, RetiredAt: e.retiredAt, Key: raw})
	}
	return json.Marshal(f)
}

// ParseRing reads a ring written by MarshalJSON.
func ParseRing(data []byte, opts ...RingOption) (*Ring, error) {
	var f ringFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: ring file: %w", ErrInvalidKey, err)
	}
	if _, err := ParseAlgorithm(string(f.Algorithm)); err != nil {
		return nil, err
	}
	r := newRing(f.Algorithm, opts)
	for _, fe := range f.Keys {
		k, err := ParseKeyAs(fe.Key, f.Algorithm)
		if err != nil {
			return nil, err
		}
		if !k.IsPrivate() {
			return nil, fmt.Errorf("%w: ring key %s has no private part", ErrInvalidKey, k.kid)
		}
		r.entries = append(r.entries, ringEntry{key: k, state: fe.State, created: fe.Created, retiredAt: fe.RetiredAt})
	}
	return r, r.resetSigner()
}

// Replace swaps the ring's keys for those of data, a ring written by MarshalJSON for the same algorithm, in one
// step: a signature made during the swap uses the old active key or the new one, never neither. Replicas of a
// cluster call it when another replica rotated the shared ring.
func (r *Ring) Replace(data []byte) error {
	other, err := ParseRing(data)
	if err != nil {
		return err
	}
	if other.alg != r.alg {
		return fmt.Errorf("%w: a %s ring cannot replace a %s ring", ErrInvalidKey, other.alg, r.alg)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries, r.signer = other.entries, other.signer
	return nil
}

// SaveRing writes the ring to path atomically with mode 0600.
func SaveRing(path string, r *Ring) error {
	data, err := r.MarshalJSON()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'))
}

// LoadRing reads a ring file written by SaveRing, refusing one that others can read.
func LoadRing(path string, opts ...RingOption) (*Ring, error) {
	data, err := readPrivateFile(path)
	if err != nil {
		return nil, err
	}
	return ParseRing(data, opts...)
}
