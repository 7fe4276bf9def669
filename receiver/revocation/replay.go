package revocation

import (
	"crypto/sha256"
	"sync"
	"time"
)

// proofUse is what the replay cache says of a proof.
type proofUse int

const (
	proofFresh     proofUse = iota // first use: remembered now
	proofReplayed                  // seen within the window
	proofCacheFull                 // not seen, but the cache cannot remember it: refuse, never forget a live proof
)

// proofCache remembers DPoP proofs for at least window (RFC 9449 §11.1) in two generations: proofs go into the
// current one, which becomes the previous one after window and is dropped after another. A proof is thus kept
// between window and twice window; lookups and inserts cost O(1), and the total is bounded by limit.
type proofCache struct {
	mu      sync.Mutex
	window  time.Duration
	limit   int
	rotated time.Time
	cur     map[[sha256.Size]byte]struct{}
	prev    map[[sha256.Size]byte]struct{}
}

func newProofCache(window time.Duration, limit int) *proofCache {
	return &proofCache{window: window, limit: limit, cur: map[[sha256.Size]byte]struct{}{}}
}

// use records key at now unless it is known already or the cache is full.
func (pc *proofCache) use(now time.Time, key [sha256.Size]byte) proofUse {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	switch age := now.Sub(pc.rotated); {
	case age >= 2*pc.window:
		pc.prev, pc.cur, pc.rotated = nil, map[[sha256.Size]byte]struct{}{}, now
	case age >= pc.window:
		pc.prev, pc.cur, pc.rotated = pc.cur, map[[sha256.Size]byte]struct{}{}, now
	}
	if _, ok := pc.cur[key]; ok {
		return proofReplayed
	}
	if _, ok := pc.prev[key]; ok {
		return proofReplayed
	}
	if len(pc.cur)+len(pc.prev) >= pc.limit {
		return proofCacheFull
	}
	pc.cur[key] = struct{}{}
	return proofFresh
}

// forget drops key, for a proof that was refused after it was recorded (the shared store could not say whether
// another replica saw it): the client may retry it.
func (pc *proofCache) forget(key [sha256.Size]byte) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	delete(pc.cur, key)
	delete(pc.prev, key)
}
