package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/internal/server"
	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/receiver/revocation"
	"github.com/ssfd/ssfd/schemas"
)

// rsAudience is the name of the benchmark's resource servers.
const rsAudience = "https://rs.example.org"

// protectedRS is a resource server: the guard over an index that one feed fills.
type protectedRS struct {
	ix  *revocation.Index
	srv *httptest.Server
}

// newProtectedRS serves GET / behind the revocation guard, with the issuer's published keys.
func newProtectedRS(b *testing.B, h *harness, ix *revocation.Index) *protectedRS {
	jwks, err := keys.NewRemoteJWKS(h.base + "/oauth/jwks")
	if err != nil {
		b.Fatal(err)
	}
	g, err := revocation.NewGuard(revocation.GuardConfig{Issuer: h.issuer, Audiences: []string{rsAudience}, Keys: jwks, Index: ix})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})))
	b.Cleanup(srv.Close)
	return &protectedRS{ix: ix, srv: srv}
}

// applySET maps a verified SET to ops and applies them.
func applySET(b *testing.B, ix *revocation.Index, set *schemas.SET) {
	ops, err := revocation.OpsFromSET(set)
	if err != nil {
		b.Error(err)
		return
	}
	for _, op := range ops {
		if err := ix.Apply(op); err != nil {
			b.Error(err)
		}
	}
}

// feedNATS fills ix from the revocation streams on NATS.
func feedNATS(b *testing.B, h *harness, ctx context.Context, ix *revocation.Index) {
	nc, err := natsbus.Connect(h.srv.NATSURL(), "bench rs")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	bus, err := natsbus.OpenRevocations(ctx, nc, 1, revocation.DefaultRetention)
	if err != nil {
		b.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		_ = bus.Follow(ctx, func(data []byte) {
			var op revocation.Op
			if json.Unmarshal(data, &op) == nil {
				_ = ix.Apply(op)
			}
		}, func() { ix.SetReady(); close(ready) })
	}()
	<-ready
}

// feedPush fills ix from SETs pushed to it (RFC 8935) by a push stream of the transmitter.
func feedPush(b *testing.B, h *harness, ix *revocation.Index) {
	v := h.verifier("admin")
	rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		set, err := v.Verify(r.Context(), string(body))
		if err != nil {
			http.Error(w, `{"err":"invalid_request","description":"bad SET"}`, http.StatusBadRequest)
			return
		}
		applySET(b, ix, set)
		w.WriteHeader(http.StatusAccepted)
	}))
	b.Cleanup(rx.Close)
	h.createPushStream(rx.URL+"/push", "Bearer bench")
	ix.SetReady()
}

// feedPoll fills ix from a long-polled stream (RFC 8936), acknowledging what it applied in the next poll.
func feedPoll(b *testing.B, h *harness, ctx context.Context, ix *revocation.Index) {
	cfg := h.createPollStream()
	v := h.verifier(cfg.Audience[0])
	ix.SetReady()
	go func() {
		var ack []string
		maxEvents := 100
		for ctx.Err() == nil {
			resp, err := h.client.Poll(ctx, cfg.Delivery.EndpointURL, schemas.PollRequest{MaxEvents: &maxEvents, Ack: ack})
			if err != nil {
				continue
			}
			ack = ack[:0]
			for jti, tok := range resp.Sets {
				if set, err := v.Verify(ctx, tok); err == nil {
					applySET(b, ix, set)
				}
				ack = append(ack, jti)
			}
		}
	}()
}

// propagation is one kill switch seen by one resource server.
type propagation struct {
	latency        time.Duration // decision → first 401 received
	acceptedAfter  int           // 200s for requests sent after the index applied the revocation
	requestsDuring int
}

// killAndWatch issues a token for a new agent, keeps two callers on the resource server with it, pulls the
// agent's kill switch and measures when the first 401 comes back and whether anything was accepted after the
// index applied the revocation.
func killAndWatch(b *testing.B, h *harness, rs *protectedRS, i int, hc *http.Client) propagation {
	agent := fmt.Sprintf("spiffe://example.org/tenant/acme/agent/bench-%d-%d", time.Now().UnixNano(), i)
	secret := h.registerClient(issuer.ClientRequest{ID: agent, Tenant: "acme", Scopes: []string{"x"}, Resources: []string{rsAudience}})
	status, out := h.form(issuer.PathToken, agent, secret, url.Values{"grant_type": {issuer.GrantClientCredentials}})
	if status != http.StatusOK {
		b.Fatalf("token: %d %v", status, out)
	}
	tok := out["access_token"].(string)
	_, payload, _ := keys.Decode(tok)
	var c revocation.Claims
	_ = json.Unmarshal(payload, &c)
	applied, stopWatch := rs.ix.Watch(c.Token(""))
	defer stopWatch()
	var appliedAt atomic.Int64 // unix nanoseconds, set once the index applied the op
	go func() {
		<-applied
		appliedAt.Store(time.Now().UnixNano())
	}()
	var (
		first401 atomic.Int64
		after    atomic.Int64
		requests atomic.Int64
		wg       sync.WaitGroup
		stop     atomic.Bool
	)
	for range 2 {
		wg.Go(func() {
			for n := 0; n < 200_000 && !stop.Load(); n++ {
				sent := time.Now().UnixNano()
				req, _ := http.NewRequest(http.MethodGet, rs.srv.URL+"/", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := hc.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				got := time.Now().UnixNano()
				requests.Add(1)
				if at := appliedAt.Load(); resp.StatusCode == http.StatusOK && at != 0 && sent > at {
					after.Add(1)
				}
				if resp.StatusCode == http.StatusUnauthorized {
					first401.CompareAndSwap(0, got)
					stop.Store(true)
				}
			}
		})
	}
	time.Sleep(5 * time.Millisecond) // traffic is flowing when the decision is made
	status, _, body := h.call(http.MethodPost, server.PathKillSwitch, h.token, server.KillSwitchRequest{Agent: agent, Reason: "bench"})
	if status != http.StatusOK {
		b.Fatalf("kill switch: %d %s", status, body)
	}
	var ks server.KillSwitchResponse
	_ = json.Unmarshal(body, &ks)
	wg.Wait()
	if first401.Load() == 0 {
		b.Fatalf("no 401 after the kill switch of %s", agent)
	}
	decided := ks.Ops[len(ks.Ops)-1].DecidedAt
	return propagation{latency: time.Duration(first401.Load() - decided.UnixNano()), acceptedAfter: int(after.Load()),
		requestsDuring: int(requests.Load())}
}

// BenchmarkRevocationPropagation pulls b.N kill switches per feed and reports the decision → first 401 latency
// at a resource server fed over NATS, SSF push and SSF long poll (spec/agent-auth.md §5), and the requests
// accepted after the revocation was applied (must be 0). Run it with `make bench-revocation`.
func BenchmarkRevocationPropagation(b *testing.B) {
	for _, feed := range []string{"nats", "push", "poll"} {
		b.Run(feed, func(b *testing.B) {
			h := newHarness(b, fastRetries)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ix := revocation.NewIndex()
			switch feed {
			case "nats":
				feedNATS(b, h, ctx, ix)
			case "push":
				feedPush(b, h, ix)
			default:
				feedPoll(b, h, ctx, ix)
			}
			rs := newProtectedRS(b, h, ix)
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
			defer hc.CloseIdleConnections()
			var lat []time.Duration
			accepted, requests := 0, 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := killAndWatch(b, h, rs, i, hc)
				lat = append(lat, p.latency)
				accepted += p.acceptedAfter
				requests += p.requestsDuring
			}
			b.StopTimer()
			slices.Sort(lat)
			q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(q(1), "max-ms")
			b.ReportMetric(float64(accepted), "accepted-after-apply")
			b.ReportMetric(float64(requests)/float64(b.N), "requests/kill")
		})
	}
}
