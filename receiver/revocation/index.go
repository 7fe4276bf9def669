package revocation

import (
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultRetention is how long an entry is kept after the op that made it, when the op says no expiry: the
// longest access token (15 minutes) plus clock skew and margin (spec/agent-auth.md §3.3).
const DefaultRetention = 20 * time.Minute

// Token is what the index needs of an access token: its jti, when it was issued, the node path of its dlg
// claim, and its watermark keys (see Claims.Token).
type Token struct {
	JTI      string
	IssuedAt time.Time
	Path     []string
	Keys     []Key
}

// The tables of the index: revoked jtis, revoked nodes, and one table of cutoffs per watermark key kind, so
// every lookup is by a plain string.
const (
	tableJTI = iota
	tableNode
	tableSubject
	tableClient
	tableActor
	tableTenant
	tableClass
	tableSigningKey
	numTables
)

// tableOf maps a watermark key kind to its table; -1 for unknown kinds.
func tableOf(kind string) int {
	switch kind {
	case KeySubject:
		return tableSubject
	case KeyClient:
		return tableClient
	case KeyActor:
		return tableActor
	case KeyTenant:
		return tableTenant
	case KeyClass:
		return tableClass
	case KeySigningKey:
		return tableSigningKey
	}
	return -1
}

// revokedBy are the reasons of watermark hits, one per table, so a refusal allocates nothing.
var revokedBy = [numTables]string{tableSubject: "revoked: sub", tableClient: "revoked: client", tableActor: "revoked: actor",
	tableTenant: "revoked: tenant", tableClass: "revoked: class", tableSigningKey: "revoked: kid"}

// Index is the exact in-memory set of revoked tokens and session nodes plus the issued-before cutoffs per key.
// Checks take no lock: a fixed-size filter answers most of them ("certainly not revoked") with a few atomic
// loads, and a hit is always confirmed in the exact tables (sync.Map, whose reads are lock-free), so the filter
// can never reject a valid token (spec/agent-auth.md §3.4). Ops are idempotent and monotonic, so they may arrive
// twice, out of order or after a snapshot. Entries expire after their op's expiry; a token an expired entry could
// reject has expired itself by then. Until SetReady, every check fails closed.
type Index struct {
	tables [numTables]sync.Map // string → *entry
	seed   maphash.Seed
	filter atomic.Pointer[filter]
	next   atomic.Pointer[filter] // the filter a sweep is building, which Apply fills too
	size   atomic.Int64
	beat   atomic.Int64 // unix nanoseconds, on this process's clock, when the newest heartbeat arrived
	ready  atomic.Bool
	ops    atomic.Int64
	sweep  sync.Mutex // one sweep at a time

	watchMu  sync.Mutex
	watchers map[*watcher]struct{}
}

// entry is one revoked jti or node, or one cutoff: at is the cutoff in unix seconds, exp the expiry; exp is
// dead once a sweep removed the entry.
type entry struct {
	at  atomic.Int64
	exp atomic.Int64
}

// dead marks the expiry of an entry a sweep removed and is about to delete from its table.
const dead = math.MinInt64

// NewIndex returns an empty index that is not ready.
func NewIndex() *Index {
	ix := &Index{seed: maphash.MakeSeed(), watchers: map[*watcher]struct{}{}}
	ix.filter.Store(newFilter(0))
	return ix
}

// Apply applies one op. Invalid ops are refused with ErrInvalidOp and change nothing.
func (ix *Index) Apply(op Op) error {
	if err := op.Validate(); err != nil {
		return err
	}
	exp := op.ExpiresAt
	if exp.IsZero() {
		exp = op.At.Add(DefaultRetention)
	}
	switch op.Kind {
	case OpRevokeJTI:
		ix.put(tableJTI, op.JTI, op.At.Unix(), exp.Unix())
	case OpRevokeNode:
		ix.put(tableNode, op.SID, op.At.Unix(), exp.Unix())
	case OpWatermark:
		ix.put(tableOf(op.Key.Kind), op.Key.Value, op.At.Unix(), exp.Unix())
	case OpHeartbeat:
		// The arrival on this clock, not the publisher's At: a skewed clock on either side must neither make a
		// live feed look dead nor a dead one look alive.
		raise(&ix.beat, time.Now().UnixNano())
		return nil
	default:
		return nil // disable and enable concern issuance only
	}
	ix.ops.Add(1)
	ix.notify()
	return nil
}

// put stores or raises an entry (the later cutoff and the later expiry win) and then marks it in the filter, so
// that a check which finds the filter bit also finds the entry. An entry a sweep marked dead is never raised:
// put finishes its delete and stores a fresh one, so an op racing with a sweep is not lost.
func (ix *Index) put(table int, key string, at, exp int64) {
	m := &ix.tables[table]
	fresh := &entry{}
	fresh.at.Store(at)
	fresh.exp.Store(exp)
	for {
		v, loaded := m.LoadOrStore(key, fresh)
		if !loaded {
			ix.size.Add(1)
			break
		}
		e := v.(*entry)
		raise(&e.at, at)
		if raiseLive(&e.exp, exp) {
			break
		}
		m.CompareAndDelete(key, e)
	}
	// Mark the filter a check will use: the current one, the one a sweep is building, and, should a sweep have
	// swapped them meanwhile, the new current one too.
	h := ix.hash(table, key)
	for f := ix.filter.Load(); ; {
		f.add(h)
		if nf := ix.next.Load(); nf != nil {
			nf.add(h)
		}
		cur := ix.filter.Load()
		if cur == f {
			return
		}
		f = cur
	}
}

// raise stores v in a unless a already holds a larger value.
func raise(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// raiseLive raises a to v like raise, unless a is dead; it reports whether a was live.
func raiseLive(a *atomic.Int64, v int64) bool {
	for {
		cur := a.Load()
		if cur == dead {
			return false
		}
		if v <= cur || a.CompareAndSwap(cur, v) {
			return true
		}
	}
}

// hash is the filter hash of key in table.
func (ix *Index) hash(table int, key string) uint64 {
	return mix(maphash.String(ix.seed, key) ^ uint64(table+1)*0x9e3779b97f4a7c15)
}

// mix is splitmix64's finaliser: it spreads table salts over every bit.
func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// has reports whether key is in table: the filter first, then the table.
func (ix *Index) has(f *filter, table int, key string) (*entry, bool) {
	if !f.has(ix.hash(table, key)) {
		return nil, false
	}
	v, ok := ix.tables[table].Load(key)
	if !ok {
		return nil, false
	}
	return v.(*entry), true
}

// Check reports why the token is revoked ("" when it is not): its jti, a node of its path, or a cutoff on one of
// its keys at or after its iat (spec/agent-auth.md §3.4). Before SetReady it answers ReasonNotReady.
func (ix *Index) Check(t Token) string {
	if !ix.ready.Load() {
		return ReasonNotReady
	}
	f := ix.filter.Load()
	if t.JTI != "" {
		if _, ok := ix.has(f, tableJTI, t.JTI); ok {
			return ReasonToken
		}
	}
	for _, sid := range t.Path {
		if _, ok := ix.has(f, tableNode, sid); ok {
			return ReasonSession
		}
	}
	iat := t.IssuedAt.Unix()
	for _, k := range t.Keys {
		table := tableOf(k.Kind)
		if table < 0 {
			continue
		}
		if e, ok := ix.has(f, table, k.Value); ok && iat <= e.at.Load() {
			return revokedBy[table]
		}
	}
	return ""
}

// The reasons Check gives besides "revoked: <key kind>".
const (
	ReasonNotReady = "the revocation index is not restored yet"
	ReasonToken    = "revoked: token"
	ReasonSession  = "revoked: session"
)

// SetReady marks the index restored: checks answer from then on, and watches of tokens revoked meanwhile close.
func (ix *Index) SetReady() {
	ix.ready.Store(true)
	ix.notify()
}

// Ready reports whether the index was restored.
func (ix *Index) Ready() bool { return ix.ready.Load() }

// LastHeartbeat returns when (on this process's clock) the newest heartbeat op arrived, zero when none did.
func (ix *Index) LastHeartbeat() time.Time {
	if n := ix.beat.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Len returns the number of live entries.
func (ix *Index) Len() int { return int(ix.size.Load()) }

// Applied returns how many revoking ops were applied since start.
func (ix *Index) Applied() int64 { return ix.ops.Load() }

// Sweep removes entries that expired before now, rebuilds the filter from the entries left (so it does not fill
// up over time), and returns how many entries it removed. An entry is first marked dead with a compare-and-swap
// on the expiry it read, so an Apply that raised it meanwhile keeps it.
func (ix *Index) Sweep(now time.Time) int {
	ix.sweep.Lock()
	defer ix.sweep.Unlock()
	cut := now.Unix()
	nf := newFilter(ix.Len())
	ix.next.Store(nf) // from here on Apply marks nf too
	n := 0
	for table := range ix.tables {
		m := &ix.tables[table]
		m.Range(func(k, v any) bool {
			e := v.(*entry)
			if cur := e.exp.Load(); cur != dead && cur < cut && e.exp.CompareAndSwap(cur, dead) {
				m.CompareAndDelete(k, e)
				n++
				return true
			}
			nf.add(ix.hash(table, k.(string)))
			return true
		})
	}
	ix.filter.Store(nf)
	ix.next.Store(nil)
	ix.size.Add(int64(-n))
	return n
}

// RunSweeper sweeps every interval until stop is closed.
func (ix *Index) RunSweeper(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			ix.Sweep(now)
		}
	}
}

// filter is a blocked two-hash bit set over every live entry: each key sets two bits of one 64-bit word, so a
// lookup costs one memory access. A clear bit proves absence, a set bit asks the exact table. Bits are set
// atomically and never cleared; a sweep replaces the whole filter.
type filter struct {
	words []atomic.Uint64
	mask  uint64 // number of words - 1
}

// minFilterWords is the smallest filter: 2 MiB, a few per cent of false positives at 1,000,000 entries.
const minFilterWords = 1 << 18

// newFilter returns a filter for about n entries: 16 bits per entry, at least minFilterWords words.
func newFilter(n int) *filter {
	size := uint64(minFilterWords)
	if want := uint64(n) / 4; want > size {
		size = 1 << bits.Len64(want-1)
	}
	return &filter{words: make([]atomic.Uint64, size), mask: size - 1}
}

// word and bits of a hash: the low bits pick the word, two 6-bit fields of the high bits pick the bits.
func (f *filter) locate(h uint64) (uint64, uint64) {
	return h & f.mask, 1<<(h>>52&63) | 1<<(h>>58&63)
}

func (f *filter) add(h uint64) {
	w, b := f.locate(h)
	f.words[w].Or(b)
}

func (f *filter) has(h uint64) bool {
	w, b := f.locate(h)
	return f.words[w].Load()&b == b
}

// watcher is one long-lived request waiting for its token's revocation.
type watcher struct {
	t    Token
	done chan struct{}
	once sync.Once
}

// Watch returns a channel that is closed as soon as t is revoked (at once if it already is), and a function to
// stop watching. Long-lived requests and streams select on it and end when it closes. Every Apply re-checks
// every open watch, so keep them to long-lived requests.
func (ix *Index) Watch(t Token) (<-chan struct{}, func()) {
	w := &watcher{t: t, done: make(chan struct{})}
	ix.watchMu.Lock()
	ix.watchers[w] = struct{}{}
	ix.watchMu.Unlock()
	if ix.Ready() && ix.Check(t) != "" {
		w.once.Do(func() { close(w.done) })
	}
	return w.done, func() {
		ix.watchMu.Lock()
		delete(ix.watchers, w)
		ix.watchMu.Unlock()
	}
}

// notify closes the channels of watchers whose token is now revoked; before the index is ready nothing is
// known yet, and a not-ready check must not close a watch.
func (ix *Index) notify() {
	if !ix.Ready() {
		return
	}
	ix.watchMu.Lock()
	defer ix.watchMu.Unlock()
	for w := range ix.watchers {
		if ix.Check(w.t) != "" {
			w.once.Do(func() { close(w.done) })
			delete(ix.watchers, w)
		}
	}
}
