package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/keys/keystest"
	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/transmitter"
)

// sink records when each SET arrives, by jti, verifying and parsing nothing: the cheapest possible receiver.
type sink struct {
	mu      sync.Mutex
	arrived map[string][]time.Time
	count   atomic.Int64
}

func (s *sink) record(jti string) {
	now := time.Now()
	s.mu.Lock()
	s.arrived[jti] = append(s.arrived[jti], now)
	s.mu.Unlock()
	s.count.Add(1)
}

// jtiOf finds the jti in a compact SET without parsing its JSON (the transmitter writes "jti" second).
func jtiOf(set []byte) string {
	_, payload, err := keys.Decode(string(set))
	if err != nil {
		return ""
	}
	const key = `"jti":"`
	i := bytes.Index(payload, []byte(key))
	if i < 0 {
		return ""
	}
	rest := payload[i+len(key):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

// rawSignRate is the signing rate of alg on both cores for half a second, measured in the same run.
func rawSignRate(b *testing.B, alg keys.Algorithm) float64 {
	r, err := keys.NewRing(alg)
	if err != nil {
		b.Fatal(err)
	}
	claims := []byte(`{"iss":"https://tx.example.net","jti":"0b6f1c9e4d2a4e0f9a7b3c1d2e3f4a5b","iat":1767225600,"aud":"admin","sub_id":{"format":"email","email":"ada@example.com"},"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{}}}`)
	var n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(500 * time.Millisecond)
	start := time.Now()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := r.Sign(claims, keys.TypeSET); err == nil {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// deliveryBench emits events until b.N SETs are delivered to the sink through streams created by create, and
// reports SETs/s, the p50 and p99 of emit → delivered, and the ratio to the raw signing rate of the streams'
// algorithm (ES256 unless the benchmark's name says RS256) in the same run, which it returns.
func deliveryBench(b *testing.B, h *harness, nStreams int, create func(i int), s *sink) (rate, rawSign float64) {
	return deliveryBenchOn(b, []*harness{h}, nStreams, create, s)
}

// deliveryBenchOn is deliveryBench with the events emitted through the replicas of a cluster in turn.
func deliveryBenchOn(b *testing.B, hs []*harness, nStreams int, create func(i int), s *sink) (rate, rawSign float64) {
	for i := range nStreams {
		create(i)
	}
	alg := keys.ES256
	if strings.Contains(b.Name(), "RS256") {
		alg = keys.RS256
	}
	rawBefore := rawSignRate(b, alg)
	subject, _ := schemas.NewEmail("ada@example.com")
	events := b.N / nStreams
	if events == 0 {
		events = 1
	}
	total := int64(events * nStreams)
	sent := map[string]time.Time{}
	var smu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	producers := 16
	if nStreams == 1 {
		producers = 128 // one SET per emit: enough concurrent producers to fill group commits
	}
	b.ResetTimer()
	start, cpuStart := time.Now(), processCPU()
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(events) {
					return
				}
				ev, _ := transmitter.NewEventFor(subject, &schemas.SessionRevoked{}, fmt.Sprintf("bench-%d", i))
				at := time.Now()
				accepted, err := hs[int(i)%len(hs)].srv.Transmitter().Emit(context.Background(), []transmitter.Event{ev})
				if err != nil {
					b.Error(err)
					return
				}
				smu.Lock()
				for _, set := range accepted[0].SETs {
					sent[set.JTI] = at
				}
				smu.Unlock()
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(2 * time.Minute)
	for s.count.Load() < total {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d", s.count.Load(), total)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed, cpu := time.Since(start), processCPU()-cpuStart
	b.StopTimer()
	// The raw rate is measured before and after the run and averaged: the load of a shared machine drifts.
	raw := (rawBefore + rawSignRate(b, alg)) / 2
	var lat []time.Duration
	s.mu.Lock()
	smu.Lock()
	for jti, arrivals := range s.arrived {
		for _, a := range arrivals {
			lat = append(lat, a.Sub(sent[jti]))
		}
	}
	smu.Unlock()
	s.mu.Unlock()
	slices.Sort(lat)
	rate = float64(total) / elapsed.Seconds()
	b.ReportMetric(rate, "SETs/s")
	b.ReportMetric(raw, "raw-sign/s")
	b.ReportMetric(rate/raw, "ratio")
	if cpu > 0 { // the whole process, sink included: µs of CPU per SET, and how busy the cores were
		b.ReportMetric(float64(cpu.Microseconds())/float64(total), "cpu-µs/SET")
		b.ReportMetric(cpu.Seconds()/elapsed.Seconds()/float64(runtime.GOMAXPROCS(0)), "cpu-busy")
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	return rate, raw
}

// pushBench runs deliveryBenchOn over nStreams push streams, created through the first of hs, to a loopback
// receiver that records each SET's arrival and verifies nothing.
func pushBench(b *testing.B, hs []*harness, nStreams int) {
	s := &sink{arrived: map[string][]time.Time{}}
	rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.record(jtiOf(body))
		w.WriteHeader(http.StatusAccepted)
	}))
	defer rx.Close()
	deliveryBenchOn(b, hs, nStreams, func(int) {
		if _, err := hs[0].client.CreateStream(context.Background(), receiver.StreamRequest{
			EventsRequested: []schemas.EventType{schemas.EventSessionRevoked},
			Delivery:        &schemas.Delivery{Method: schemas.DeliveryPush, EndpointURL: rx.URL}}); err != nil {
			b.Fatal(err)
		}
	}, s)
}

func es256(c *config.Config) { c.SigningAlgorithms = []string{"ES256"} }

func rs256(c *config.Config) { c.SigningAlgorithms = []string{"RS256"} }

// BenchmarkPushDelivery: emit → pushed to a loopback receiver that verifies nothing, for 1 and 100 ES256 streams
// and 100 RS256 streams (run it with fewer SETs: RSA signing is about 40 times slower).
func BenchmarkPushDelivery(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) { pushBench(b, []*harness{newHarness(b, es256)}, n) })
	}
	b.Run("RS256/streams=100", func(b *testing.B) { pushBench(b, []*harness{newHarness(b, rs256)}, 100) })
}

// BenchmarkNATSDelivery: emit → published on ssf.set.<id> and received by a NATS subscriber, for 1 and 100 ES256
// streams and 100 RS256 streams.
func BenchmarkNATSDelivery(b *testing.B) {
	for _, c := range []struct {
		name   string
		n      int
		config func(*config.Config)
	}{{"streams=1", 1, es256}, {"streams=100", 100, es256}, {"RS256/streams=100", 100, rs256}} {
		n := c.n
		b.Run(c.name, func(b *testing.B) {
			h := newHarness(b, c.config)
			s := &sink{arrived: map[string][]time.Time{}}
			nc := h.natsConn()
			sub, err := nc.Subscribe(natsbus.SubjectSETPrefix+">", func(m *nats.Msg) { s.record(m.Header.Get("Nats-Msg-Id")) })
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Unsubscribe()
			_ = sub.SetPendingLimits(-1, -1)
			deliveryBench(b, h, n, func(int) {
				if _, err := h.client.CreateStream(context.Background(), receiver.StreamRequest{
					EventsRequested: []schemas.EventType{schemas.EventSessionRevoked},
					Delivery:        &schemas.Delivery{Method: schemas.DeliveryNATS}}); err != nil {
					b.Fatal(err)
				}
			}, s)
		})
	}
}

// BenchmarkNATSToReceiver: one process, end to end: emit → signed and queued → published on NATS → consumed by the
// receiver role through its durable consumer → verified, de-duplicated, stored and handed to a handler. The
// limit is the machine signing and verifying every SET on the same two cores, 1/(1/sign + 1/verify) from the
// raw rates of the same run (target ≥ 70 %).
func BenchmarkNATSToReceiver(b *testing.B) {
	addr := freeAddr(b)
	h := newHarness(b, es256, func(c *config.Config) {
		c.HTTPAddr = addr
		c.Receiver.NATSSink = false // handlers only: the sink's own publish is measured by BenchmarkNATSDelivery
		c.Receiver.Registrations = []config.Registration{{Name: "self", Issuer: "http://" + addr, Delivery: "nats",
			TokenFile: filepath.Join(c.DataDir, "admin.token"), Events: []string{"session-revoked"}}}
	})
	s := &sink{arrived: map[string][]time.Time{}}
	h.srv.Dispatcher().HandleAll(func(_ context.Context, d receiver.Delivery) error {
		if d.SET.Event.Type == schemas.EventSessionRevoked {
			s.record(d.SET.ID)
		}
		return nil
	})
	rate, rawSign := deliveryBench(b, h, 1, func(int) {
		waitFor(b, "the receiver's stream is verified", func() bool {
			st := h.srv.Receiver().Statuses()
			return len(st) == 1 && !st[0].LastVerification.IsZero()
		})
	}, s)
	key, err := keys.Generate(keys.ES256)
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := keys.NewSigner(key)
	tok, err := signer.Sign([]byte(`{"iss":"https://tx.example.net","jti":"0b6f1c9e4d2a4e0f9a7b3c1d2e3f4a5b","iat":1767225600,"aud":"admin","sub_id":{"format":"email","email":"ada@example.com"},"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{}}}`), keys.TypeSET)
	if err != nil {
		b.Fatal(err)
	}
	rawVerify, err := keystest.RawVerifyRate(key, tok, 2, 500*time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	limit := 1 / (1/rawSign + 1/rawVerify)
	b.ReportMetric(rawVerify, "raw-verify/s")
	b.ReportMetric(limit, "sign+verify/s")
	b.ReportMetric(rate/limit, "e2e-ratio")
}
