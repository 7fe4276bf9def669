package revocation_test

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssfd/ssfd/receiver/revocation"
)

// The index the benchmarks check against: 1,000,000 live entries, the size the project targets (≤ 1 µs p99 per
// check, ≤ 300 MB). Building it takes about a second, so it is built once per test binary and shared.
const (
	benchJTIs  = 600_000
	benchNodes = 300_000
	benchMarks = 100_000 // spread over the six key kinds
)

var (
	benchOnce    sync.Once
	benchIx      *revocation.Index
	benchHeapMB  float64 // HeapInuse growth while building, in MiB
	benchBuildNs float64
	benchT0      = time.Unix(1767225600, 0)
)

// benchID returns a 22-character base64url identifier derived from (space, n), the shape of the issuer's jtis
// and sids (16 random bytes); distinct for distinct inputs, and spread like random ones.
func benchID(space byte, n uint64) string {
	var b [16]byte
	h := (n + 1) * 0x9E3779B97F4A7C15
	h ^= h >> 29
	binary.LittleEndian.PutUint64(b[:8], h)
	binary.LittleEndian.PutUint64(b[8:], n)
	b[15] = space
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// benchKey returns the value of the n-th watermark key of a kind, shaped like the real ones.
func benchKey(kind string, n uint64) string {
	id := benchID(kind[0], n)
	switch kind {
	case revocation.KeySubject:
		return "https://idp.example.com|u-" + id
	case revocation.KeyClient, revocation.KeyActor:
		return "spiffe://prod.example.net/tenant/t" + strconv.FormatUint(n%1000, 10) + "/agent/" + id
	case revocation.KeyTenant:
		return "tenant-" + id
	case revocation.KeyClass:
		return "bp-" + id
	default: // kid: an RFC 7638 thumbprint is 43 characters
		return id + id[:21]
	}
}

var benchKinds = []string{revocation.KeySubject, revocation.KeyClient, revocation.KeyActor, revocation.KeyTenant,
	revocation.KeyClass, revocation.KeySigningKey}

// benchIndex returns the shared index, building it on first use. The heap figure is HeapInuse after a GC
// minus the same before: everything the index keeps, the key strings included (an index restored from NATS
// owns the strings it decoded).
func benchIndex(b *testing.B) *revocation.Index {
	b.Helper()
	benchOnce.Do(func() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		ix := revocation.NewIndex()
		exp := benchT0.Add(24 * time.Hour) // nothing expires during the run
		apply := func(op revocation.Op) {
			op.At, op.ExpiresAt = benchT0, exp
			if err := ix.Apply(op); err != nil {
				b.Fatal(err)
			}
		}
		for i := range uint64(benchJTIs) {
			apply(revocation.Op{ID: "o", Kind: revocation.OpRevokeJTI, JTI: "t_" + benchID('j', i)})
		}
		for i := range uint64(benchNodes) {
			apply(revocation.Op{ID: "o", Kind: revocation.OpRevokeNode, SID: "s_" + benchID('n', i)})
		}
		for i := range uint64(benchMarks) {
			kind := benchKinds[i%uint64(len(benchKinds))]
			apply(revocation.Op{ID: "o", Kind: revocation.OpWatermark,
				Key: revocation.Key{Kind: kind, Value: benchKey(kind, i)}})
		}
		ix.SetReady()
		benchBuildNs = float64(time.Since(start).Nanoseconds())
		runtime.GC()
		runtime.ReadMemStats(&after)
		benchHeapMB = float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / (1 << 20)
		benchIx = ix
	})
	if benchIx == nil || benchIx.Len() < benchJTIs+benchNodes+benchMarks {
		b.Fatalf("index not built: %v", benchIx)
	}
	return benchIx
}

// benchTokens returns n distinct depth-3 tokens, numbered from base, (path root → A → B → C, act chain of three agents, 8 watermark
// keys via Claims.Token). Clean tokens hit nothing except a tenant cutoff set before their iat (so one lookup is
// a hit that must compare the cutoff, as for a tenant that was killed and restored earlier). Revoked tokens are
// rejected by a cutoff on their signing key, the last key Check looks at, so every lookup is made.
func benchTokens(b *testing.B, ix *revocation.Index, base uint64, n int, revoked bool) []revocation.Token {
	b.Helper()
	iat := benchT0.Add(time.Hour)
	toks := make([]revocation.Token, n)
	for i := range toks {
		u := base + uint64(i) // base ≥ 1,000,000: outside the ranges of the index
		agent := func(k uint64) string { return benchKey(revocation.KeyActor, u*4+k) }
		c := revocation.Claims{
			Issuer: "https://auth.example.net", Subject: "u-" + benchID('u', u), SubjectIssuer: "https://idp.example.com",
			ClientID: agent(3), IssuedAt: iat.Unix(), JTI: "t_" + benchID('j', u),
			Act: &revocation.Actor{Subject: agent(3), Act: &revocation.Actor{Subject: agent(2),
				Act: &revocation.Actor{Subject: agent(1)}}},
			Delegation: &revocation.Delegation{Depth: 3, MaxDepth: 3, Path: []string{"s_" + benchID('n', u*4),
				"s_" + benchID('n', u*4+1), "s_" + benchID('n', u*4+2), "s_" + benchID('n', u*4+3)}},
			Tenant: benchKey(revocation.KeyTenant, u), AgentClass: benchKey(revocation.KeyClass, u),
		}
		kid := benchKey(revocation.KeySigningKey, u)
		toks[i] = benchCompact(c.Token(kid))
		if len(toks[i].Keys) != 8 || len(toks[i].Path) != 4 {
			b.Fatalf("token has %d keys and %d nodes", len(toks[i].Keys), len(toks[i].Path))
		}
		at := benchT0 // the tenant cutoff: before iat
		if err := ix.Apply(revocation.Op{ID: "o", Kind: revocation.OpWatermark, At: at, ExpiresAt: at.Add(24 * time.Hour),
			Key: revocation.Key{Kind: revocation.KeyTenant, Value: c.Tenant}}); err != nil {
			b.Fatal(err)
		}
		if revoked {
			if err := ix.Apply(revocation.Op{ID: "o", Kind: revocation.OpWatermark, At: iat, ExpiresAt: iat.Add(24 * time.Hour),
				Key: revocation.Key{Kind: revocation.KeySigningKey, Value: kid}}); err != nil {
				b.Fatal(err)
			}
		}
		got := ix.Check(toks[i])
		if revoked != (got != "") || (revoked && got != "revoked: kid") {
			b.Fatalf("token %d: Check = %q, revoked = %v", i, got, revoked)
		}
	}
	return toks
}

// benchCompact copies the strings of tok into one contiguous buffer, as they are after decoding a ~1 KB JWT,
// so that reading the token itself costs a few cache lines, not one cache miss per string: the benchmark is
// about the index, whose 1,000,000 entries stay out of the cache, not about a token scattered over the heap.
func benchCompact(tok revocation.Token) revocation.Token {
	var sb strings.Builder
	sb.WriteString(tok.JTI)
	for _, p := range tok.Path {
		sb.WriteString(p)
	}
	for _, k := range tok.Keys {
		sb.WriteString(k.Kind)
		sb.WriteString(k.Value)
	}
	buf := sb.String()
	take := func(n int) string { s := buf[:n]; buf = buf[n:]; return s }
	out := revocation.Token{JTI: take(len(tok.JTI)), IssuedAt: tok.IssuedAt,
		Path: make([]string, len(tok.Path)), Keys: make([]revocation.Key, len(tok.Keys))}
	for i, p := range tok.Path {
		out.Path[i] = take(len(p))
	}
	for i, k := range tok.Keys {
		out.Keys[i] = revocation.Key{Kind: take(len(k.Kind)), Value: take(len(k.Value))}
	}
	return out
}

// benchSamples are single-check latencies.
type benchSamples []time.Duration

// quantile returns the latency in ns at q (0..1); it sorts the samples.
func (s benchSamples) quantile(q float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(math.Ceil(q*float64(len(s))))-1)].Nanoseconds())
}

// benchSampleEvery: one check in benchSampleEvery is timed on its own, with time.Now before and after it; p50
// and p99 are exact quantiles of those samples (kept in a slice allocated before the loop, sorted after it). Timing single checks (rather than batches of 1,000) keeps the tail
// visible: a batch mean hides a slow check among fast ones. A time.Now pair costs a few tens of ns (vDSO clock),
// included in each sample, so p99 is an upper bound; "clock-ns" reports that cost measured in the same run.
// Timing only one check in 8 keeps the clock's share of ns/op small.
const benchSampleEvery = 8

// benchClock measures the median cost of an empty time.Now pair.
func benchClock() float64 {
	s := make(benchSamples, 100_000)
	for i := range s {
		t0 := time.Now()
		s[i] = time.Since(t0)
	}
	return s.quantile(0.5)
}

var benchSink atomic.Value

// benchChecks checks toks in turn while next says so, timing one check in benchSampleEvery; n sizes the samples.
func benchChecks(ix *revocation.Index, toks []revocation.Token, next func() bool, n int) benchSamples {
	samples := make(benchSamples, 0, n/benchSampleEvery+1)
	mask := len(toks) - 1
	var r string
	for i := 0; next(); i++ {
		tok := &toks[i&mask]
		if i%benchSampleEvery == 0 {
			t0 := time.Now()
			r = ix.Check(*tok)
			samples = append(samples, time.Since(t0))
		} else {
			r = ix.Check(*tok)
		}
	}
	benchSink.Store(r)
	return samples
}

// BenchmarkCheck: Index.Check of a depth-3 token with 8 keys against an index of 1,000,000 live entries, on one
// goroutine and from RunParallel (GOMAXPROCS goroutines). The tokens rotate over 4,096 distinct ones, so the
// lookups do not all hit the same cache lines. Reports p50/p99 per check, the index's heap and its build time.
func BenchmarkCheck(b *testing.B) {
	ix := benchIndex(b)
	clock := benchClock()
	sets := []struct {
		name string
		toks []revocation.Token
	}{
		{"clean", benchTokens(b, ix, 1_000_000, 4096, false)},
		{"revoked", benchTokens(b, ix, 2_000_000, 4096, true)},
	}
	report := func(b *testing.B, s benchSamples) {
		b.ReportMetric(s.quantile(0.50), "p50-ns")
		b.ReportMetric(s.quantile(0.99), "p99-ns")
		b.ReportMetric(clock, "clock-ns")
		b.ReportMetric(benchHeapMB, "index-MB")
		b.ReportMetric(float64(ix.Len()), "entries")
	}
	for _, set := range sets {
		toks := set.toks
		b.Run(set.name, func(b *testing.B) {
			report(b, benchChecks(ix, toks, b.Loop, b.N))
		})
		b.Run(set.name+"-parallel", func(b *testing.B) {
			var mu sync.Mutex
			var all benchSamples
			b.RunParallel(func(pb *testing.PB) {
				samples := benchChecks(ix, toks, pb.Next, b.N)
				mu.Lock()
				all = append(all, samples...)
				mu.Unlock()
			})
			b.StopTimer()
			report(b, all)
		})
	}
	const built = benchJTIs + benchNodes + benchMarks
	b.Logf("index of %d entries built in %.2f s, heap %.1f MiB (%.0f B/entry); %d entries with the tokens' own",
		built, benchBuildNs/1e9, benchHeapMB, benchHeapMB*(1<<20)/built, ix.Len())
}

// BenchmarkApply: Index.Apply of revoke_jti ops with new jtis into the 1,000,000-entry index (it grows by b.N;
// benchmarks run in source order, so the checks above saw exactly 1,000,000 plus their own tokens' entries).
// The jti strings are made before the timer starts; "with-1000-watchers" adds the cost of notify when 1,000
// streams are open (every Apply re-checks every watcher).
func BenchmarkApply(b *testing.B) {
	ix := benchIndex(b)
	var gen uint64 = 1 << 40
	run := func(b *testing.B) {
		jtis := make([]string, b.N)
		for i := range jtis {
			jtis[i] = "t_" + benchID('a', gen)
			gen++
		}
		at, exp := benchT0, benchT0.Add(24*time.Hour)
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			if err := ix.Apply(revocation.Op{ID: jtis[i], Kind: revocation.OpRevokeJTI, JTI: jtis[i], At: at, ExpiresAt: exp}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	}
	b.Run("revoke_jti", run)
	b.Run("revoke_jti-with-1000-watchers", func(b *testing.B) {
		toks := benchTokens(b, ix, 3_000_000, 1000, false)
		for _, tok := range toks {
			_, stop := ix.Watch(tok)
			defer stop()
		}
		run(b)
	})
}
