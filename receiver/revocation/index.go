package revocation

import (
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

// Index is the exact in-memory set of revoked tokens and session nodes plus the issued-before cutoffs per key.
// Checks take no lock (sync.Map reads are lock-free); ops are idempotent and monotonic, so they may arrive twice,
// out of order or after a snapshot. Entries expire retention after their op; a token an expired entry could
// reject has expired itself by then. Until SetReady, every check fails closed.
type Index struct {
	jtis  sync.Map // string → *entry
	nodes sync.Map // string → *entry
	marks sync.Map // markKey → *entry (at: the cutoff, newest wins)
	size  atomic.Int64
	ready atomic.Bool
	ops   atomic.Int64

	watchMu  sync.Mutex
	watchers map[*watcher]struct{}
}

// entry is one revoked jti or node, or one cutoff: at is the cutoff in unix seconds, exp the expiry.
type entry struct {
	at  atomic.Int64
	exp atomic.Int64
}

type markKey struct{ kind, value string }

// NewIndex returns an empty index that is not ready.
func NewIndex() *Index { return &Index{watchers: map[*watcher]struct{}{}} }

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
		ix.put(&ix.jtis, op.JTI, op.At.Unix(), exp.Unix())
	case OpRevokeNode:
		ix.put(&ix.nodes, op.SID, op.At.Unix(), exp.Unix())
	case OpWatermark:
		ix.put(&ix.marks, markKey{op.Key.Kind, op.Key.Value}, op.At.Unix(), exp.Unix())
	default:
		return nil // disable and enable concern issuance only
	}
	ix.ops.Add(1)
	ix.notify()
	return nil
}

// put stores or raises an entry: the later cutoff and the later expiry win.
func (ix *Index) put(m *sync.Map, key any, at, exp int64) {
	fresh := &entry{}
	fresh.at.Store(at)
	fresh.exp.Store(exp)
	v, loaded := m.LoadOrStore(key, fresh)
	if !loaded {
		ix.size.Add(1)
		return
	}
	e := v.(*entry)
	raise(&e.at, at)
	raise(&e.exp, exp)
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

// Check reports why the token is revoked ("" when it is not): its jti, a node of its path, or a cutoff on one of
// its keys at or after its iat (spec/agent-auth.md §3.4). Before SetReady it answers "not ready".
func (ix *Index) Check(t Token) string {
	if !ix.ready.Load() {
		return ReasonNotReady
	}
	if t.JTI != "" {
		if _, ok := ix.jtis.Load(t.JTI); ok {
			return ReasonToken
		}
	}
	for _, sid := range t.Path {
		if _, ok := ix.nodes.Load(sid); ok {
			return ReasonSession
		}
	}
	iat := t.IssuedAt.Unix()
	for _, k := range t.Keys {
		if v, ok := ix.marks.Load(markKey{k.Kind, k.Value}); ok && iat <= v.(*entry).at.Load() {
			return "revoked: " + k.Kind
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

// Len returns the number of live entries.
func (ix *Index) Len() int { return int(ix.size.Load()) }

// Applied returns how many revoking ops were applied since start.
func (ix *Index) Applied() int64 { return ix.ops.Load() }

// Sweep removes entries that expired before now and returns how many it removed.
func (ix *Index) Sweep(now time.Time) int {
	cut := now.Unix()
	n := 0
	for _, m := range []*sync.Map{&ix.jtis, &ix.nodes, &ix.marks} {
		m.Range(func(k, v any) bool {
			if v.(*entry).exp.Load() < cut {
				if _, deleted := m.LoadAndDelete(k); deleted {
					n++
				}
			}
			return true
		})
	}
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

// watcher is one long-lived request waiting for its token's revocation.
type watcher struct {
	t    Token
	done chan struct{}
	once sync.Once
}

// Watch returns a channel that is closed as soon as t is revoked (at once if it already is), and a function to
// stop watching. Long-lived requests and streams select on it and end when it closes.
func (ix *Index) Watch(t Token) (<-chan struct{}, func()) {
	w := &watcher{t: t, done: make(chan struct{})}
	ix.watchMu.Lock()
	ix.watchers[w] = struct{}{}
	ix.watchMu.Unlock()
	if ix.Check(t) != "" && ix.Ready() {
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
