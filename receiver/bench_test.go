package receiver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/keys/keystest"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/storage/bolt"
)

// benchReceiver is a receiver on a bbolt file with registration "tx" trusting key, whose one handler counts.
type benchReceiver struct {
	rcv     *receiver.Receiver
	handled atomic.Int64
}

func newBenchReceiver(b *testing.B, key *keys.Key) *benchReceiver {
	b.Helper()
	db, err := bolt.Open(filepath.Join(b.TempDir(), "rx.db"))
	if err != nil {
		b.Fatal(err)
	}
	br := &benchReceiver{}
	d := receiver.NewDispatcher()
	d.HandleAll(func(context.Context, receiver.Delivery) error { br.handled.Add(1); return nil })
	br.rcv = receiver.New(db, d)
	v, err := receiver.NewVerifier(keys.StaticKeys(keys.NewJWKS(key)), issuer, []string{audience})
	if err != nil {
		b.Fatal(err)
	}
	if err := br.rcv.Add("tx"); err != nil {
		b.Fatal(err)
	}
	if err := br.rcv.SetVerifier("tx", v); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = br.rcv.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done; _ = db.Close() })
	return br
}

// signedSETs signs n SETs with distinct jtis on every core.
func signedSETs(b *testing.B, key *keys.Key, n int) []string {
	b.Helper()
	s, err := keys.NewSigner(key)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]string, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				claims := claims(map[string]any{"jti": fmt.Sprintf("bench-%08d", i)})
				tok, err := s.Sign(claims, keys.TypeSET)
				if err != nil {
					b.Error(err)
					return
				}
				out[i] = tok
			}
		})
	}
	wg.Wait()
	return out
}

// waitHandled waits until n SETs were handled.
func (br *benchReceiver) waitHandled(b *testing.B, n int) {
	deadline := time.Now().Add(5 * time.Minute)
	for br.handled.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("handled %d of %d", br.handled.Load(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// benchSETs returns a key of alg, at least b.N SETs it signed, and go-jose's raw verify rate of one of them on
// every core, measured now.
func benchSETs(b *testing.B, alg keys.Algorithm) (key *keys.Key, tokens []string, raw float64) {
	b.Helper()
	key, err := keys.Generate(alg)
	if err != nil {
		b.Fatal(err)
	}
	tokens = signedSETs(b, key, max(b.N, 512))
	raw, err = keystest.RawVerifyRate(key, tokens[0], runtime.GOMAXPROCS(0), 500*time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	return key, tokens, raw
}

// BenchmarkReceive: SETs/s through verify + replay check + durable inbox + dispatch to a handler, fed in batches
// of 256 by sixteen concurrent deliveries (as the poll client and the NATS consumer do), next to go-jose's raw
// verify rate on every core in the same run (spec target: ≥ 80 %).
func BenchmarkReceive(b *testing.B) {
	for _, alg := range []keys.Algorithm{keys.ES256, keys.RS256} {
		b.Run(string(alg), func(b *testing.B) {
			key, tokens, raw := benchSETs(b, alg)
			n := len(tokens)
			br := newBenchReceiver(b, key)
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range 16 {
				wg.Go(func() {
					for {
						lo := int(next.Add(256)) - 256
						if lo >= n {
							return
						}
						for _, err := range br.rcv.ReceiveAll(ctx, "tx", tokens[lo:min(lo+256, n)]) {
							if err != nil {
								b.Error(err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			br.waitHandled(b, n)
			rate := float64(n) / time.Since(start).Seconds()
			b.StopTimer()
			b.ReportMetric(rate, "SETs/s")
			b.ReportMetric(raw, "raw-verify/s")
			b.ReportMetric(rate/raw, "ratio")
		})
	}
}

// BenchmarkPushEndpoint: pushed SETs/s answered 202 by POST /receiver/push/tx over loopback HTTP from 64
// concurrent transmitter connections (ES256), next to go-jose's raw verify rate of the same run.
func BenchmarkPushEndpoint(b *testing.B) {
	key, tokens, raw := benchSETs(b, keys.ES256)
	n := len(tokens)
	br := newBenchReceiver(b, key)
	e := echo.New()
	br.rcv.RegisterPush(e)
	srv := httptest.NewServer(e)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, srv.URL+receiver.PushPath+"tx", strings.NewReader(tokens[i]))
				req.Header.Set("Content-Type", "application/secevent+jwt")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("push answered %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	rate := float64(n) / time.Since(start).Seconds()
	b.StopTimer()
	br.waitHandled(b, n)
	b.ReportMetric(rate, "req/s")
	b.ReportMetric(raw, "raw-verify/s")
	b.ReportMetric(rate/raw, "ratio")
}
