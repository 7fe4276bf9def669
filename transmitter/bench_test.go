package transmitter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
	"github.com/ssfd/ssfd/transmitter"
)

// ringSigner signs with one key ring: the smallest transmitter.Signer.
type ringSigner struct{ ring *keys.Ring }

func (r ringSigner) Sign(_ string, claims []byte) (string, error) {
	return r.ring.Sign(claims, keys.TypeSET)
}
func (r ringSigner) Algorithms() []string  { return []string{string(r.ring.Algorithm())} }
func (r ringSigner) JWKS() ([]byte, error) { return json.Marshal(r.ring.JWKS()) }

// commitWindow is the storage's commit window in these benchmarks: 0, as ssfd serve ships. BENCHMARKS.md notes
// what a window of a few milliseconds changes.
var commitWindow time.Duration

var rings sync.Map // keys.Algorithm → *keys.Ring, generated once per run

func ring(b *testing.B, alg keys.Algorithm) *keys.Ring {
	if r, ok := rings.Load(alg); ok {
		return r.(*keys.Ring)
	}
	r, err := keys.NewRing(alg)
	if err != nil {
		b.Fatal(err)
	}
	rings.Store(alg, r)
	return r
}

// rawSignRate measures the signing rate of the ring on every CPU for about half a second: the raw limit the
// emit benchmarks compare with, measured in the same run because these machines are shared and noisy.
func rawSignRate(b *testing.B, r *keys.Ring) float64 {
	claims := []byte(`{"iss":"https://tx.example.net","jti":"0b6f1c9e4d2a4e0f9a7b3c1d2e3f4a5b","iat":1767225600,"aud":"admin",` +
		`"txn":"0b6f1c9e4d2a4e0f9a7b3c1d2e3f4a5c","sub_id":{"format":"email","email":"ada@example.com"},` +
		`"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{}}}`)
	var n atomic.Int64
	deadline := time.Now().Add(500 * time.Millisecond)
	var wg sync.WaitGroup
	start := time.Now()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := r.Sign(claims, keys.TypeSET); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// newTransmitter builds a transmitter on a bbolt file with n poll streams that carry session-revoked.
func newTransmitter(b *testing.B, alg keys.Algorithm, n int) *transmitter.Transmitter {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "ssfd.db"), bolt.WithCommitWindow(commitWindow))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	tx, err := transmitter.New("https://tx.example.net", db, db, ringSigner{ring(b, alg)})
	if err != nil {
		b.Fatal(err)
	}
	p := transmitter.Principal{ClientID: "bench", Audience: schemas.Audience{"bench"}}
	for range n {
		if _, err := tx.CreateStream(context.Background(), p, []byte(`{"events_requested":["`+string(schemas.EventSessionRevoked)+`"]}`)); err != nil {
			b.Fatal(err)
		}
	}
	return tx
}

// BenchmarkEmit measures emit → signed and durably queued SETs per second, with as many concurrent producers
// as it takes to keep both cores busy, next to the raw signing rate of the same run.
func BenchmarkEmit(b *testing.B) {
	subject, _ := schemas.NewEmail("ada@example.com")
	ev, err := transmitter.NewEventFor(subject, &schemas.SessionRevoked{CAEPCommon: schemas.CAEPCommon{InitiatingEntity: schemas.InitiatedByAdmin}}, "")
	if err != nil {
		b.Fatal(err)
	}
	for _, alg := range []keys.Algorithm{keys.ES256, keys.RS256} {
		for _, n := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("%s/streams=%d", alg, n), func(b *testing.B) {
				tx := newTransmitter(b, alg, n)
				raw := rawSignRate(b, ring(b, alg))
				producers := 256
				if n > 1 {
					producers = 16
				}
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for range producers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if _, err := tx.Emit(context.Background(), []transmitter.Event{ev}); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				rate := float64(b.N*n) / time.Since(start).Seconds()
				b.ReportMetric(rate, "SETs/s")
				b.ReportMetric(raw, "raw-sign/s")
				b.ReportMetric(rate/raw, "ratio")
			})
		}
	}
}
