package issuer_test

import (
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/keys/keystest"
	"github.com/ssfd/ssfd/issuer"
)

// benchParallelism is how many concurrent clients per CPU the benchmarks run: 8 callers on two cores.
const benchParallelism = 4

// latencies collects request durations from parallel goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// report adds tokens/s, p50 and p99 in milliseconds, the raw ES256 signing rate of the same run and the ratio.
func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	if len(l.d) == 0 {
		b.Fatal("no request succeeded")
	}
	rate := float64(b.N) / elapsed.Seconds()
	slices.Sort(l.d)
	at := func(q float64) float64 { return float64(l.d[int(q*float64(len(l.d)-1))].Microseconds()) / 1000 }
	k, err := keys.Generate(keys.ES256)
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"iss":"http://127.0.0.1:8080","sub":"u-88213","aud":"https://tools.example.org/mcp/invoices","client_id":"spiffe://example.org/tenant/acme/agent/ledger-tool","iat":1796080793,"exp":1796081092,"jti":"t_LXZ3gihs6ZUBjLHilzqW_w","scope":"invoices.read","sid":"s_tEdoxrMQ2yThNs2X6sixsA","dlg":{"depth":1,"max_depth":3,"path":["s_IGKDpk0DG8b58CFBYSQN3A","s_tEdoxrMQ2yThNs2X6sixsA"]},"tenant":"acme"}`)
	raw, err := keystest.RawSignRate(k, payload, 2, 500*time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rate, "tokens/s")
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(raw, "raw-sign/s")
	b.ReportMetric(rate/raw, "ratio")
}

// runRequests posts form to path from parallel clients authenticated as client until b.N answered 200, and
// reports the rate and latencies.
func runRequests(b *testing.B, e *env, path, form, client string) {
	var lat latencies
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t0 := time.Now()
			if status := e.post(path, form, e.basic(client)); status != http.StatusOK {
				b.Errorf("status %d", status)
				return
			}
			lat.add(time.Since(t0))
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	lat.report(b, elapsed)
}

// BenchmarkClientCredentials: client_secret_basic token requests over loopback HTTP from parallel clients, each
// verified by the issuer, minted in the run's workload node and signed with ES256.
func BenchmarkClientCredentials(b *testing.B) {
	e := newEnv(b, issuer.Config{})
	e.chain()
	form := url.Values{"grant_type": {issuer.GrantClientCredentials}, "resource": {tools}, "scope": {"invoices.read"}}.Encode()
	runRequests(b, e, issuer.PathToken, form, agentA)
}

// BenchmarkTokenExchange: one delegation hop per request (human → A), each creating and durably storing a new
// node after the full validation of spec/agent-auth.md §2.4.
func BenchmarkTokenExchange(b *testing.B) {
	e := newEnv(b, issuer.Config{})
	e.chain()
	root, _ := e.session()
	form := url.Values{"grant_type": {issuer.GrantTokenExchange}, "subject_token": {root},
		"subject_token_type": {issuer.TokenTypeAccessToken}, "resource": {agentB}, "scope": {"invoices.read"}}.Encode()
	runRequests(b, e, issuer.PathToken, form, agentA)
}

// BenchmarkIntrospect: RFC 7662 checks of a delegated token, each reading the revocation state of its path.
func BenchmarkIntrospect(b *testing.B) {
	e := newEnv(b, issuer.Config{})
	e.chain()
	root, _ := e.session()
	tok := e.mustExchange(agentA, root, agentB, "invoices.read")
	runRequests(b, e, issuer.PathIntrospect, url.Values{"token": {tok}}.Encode(), rs)
}
