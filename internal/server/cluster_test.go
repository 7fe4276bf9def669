package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/lease"
	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/internal/server"
	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/receiver/revocation"
	"github.com/ssfd/ssfd/schemas"
)

// clusterToken is the management token every replica of a test cluster accepts.
const clusterToken = "cluster-admin-token-for-tests-only"

// testCluster is a real three-node JetStream cluster in this process and the replicas of ssfd running on it,
// all with --store jetstream, one issuer URL and one management token.
type testCluster struct {
	t        testing.TB
	nats     *natsbus.Cluster
	issuer   string
	prefix   string
	replicas []*harness
}

// newTestCluster starts three NATS nodes and n ssfd replicas. The issuer URL is the first replica's address,
// as a load balancer's would be; every replica answers for it.
func newTestCluster(t testing.TB, n int, change ...func(*config.Config)) *testCluster {
	t.Helper()
	nc, err := natsbus.StartCluster(3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Shutdown)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	first := ln.Addr().String()
	_ = ln.Close()
	c := &testCluster{t: t, nats: nc, issuer: "http://" + first, prefix: "SSFDTEST"} // the NATS cluster is the test's own
	for i := range n {
		addr := "127.0.0.1:0"
		if i == 0 {
			addr = first
		}
		c.replicas = append(c.replicas, c.start(i, addr, t.TempDir(), change...))
	}
	return c
}

// start runs replica i on addr with its own data directory (only a cache lives there).
func (c *testCluster) start(i int, addr, dir string, change ...func(*config.Config)) *harness {
	t := c.t
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTPAddr = addr
	cfg.Issuer = c.issuer
	cfg.Dev = true
	cfg.Store = config.StoreJetStream
	cfg.NATSURL = c.nats.URLs()
	cfg.NATSReplicas = 3
	cfg.NATSPrefix = c.prefix
	cfg.ReplicaID = fmt.Sprintf("replica-%d", i+1)
	cfg.MinVerificationInterval = 0
	cfg.PollTimeout = 20 * time.Second
	cfg.PushRetryMin, cfg.PushRetryMax = 20*time.Millisecond, 200*time.Millisecond
	cfg.Tokens = []config.Token{{Value: clusterToken, ClientID: "admin", Scopes: []string{"ssf.manage", "ssf.read", "ssf.emit", "ssfd.admin"}}}
	for _, f := range change {
		f(&cfg)
	}
	srv := startServer(t, cfg)
	h := &harness{t: t, srv: srv, base: "http://" + srv.Addr(), issuer: srv.Issuer(), token: clusterToken}
	waitFor(t, "the replica's revocation index is restored", srv.RevocationIndex().Ready)
	if i == 0 {
		client, err := receiver.Discover(context.Background(), h.issuer, receiver.WithToken(h.token))
		if err != nil {
			t.Fatal(err)
		}
		h.client = client
	}
	return h
}

// leasesSettled reports whether the replicas hold every work partition between them, each once.
func (c *testCluster) leasesSettled() bool {
	n := 0
	for _, r := range c.replicas {
		n += r.srv.LeasesHeld()
	}
	return n == lease.Partitions
}

// on rewrites a URL of the cluster (the issuer's host) to replica h.
func (h *harness) on(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		h.t.Fatal(err)
	}
	p.Host = strings.TrimPrefix(h.base, "http://")
	return p.String()
}

// TestClusterStreamsCreatedOnOneReplicaAreServedByAnother: a stream created through replica 1 is read through
// replica 2; a long poll waiting on replica 2 wakes for an event emitted through replica 1 (the poll's timeout is
// 20 s, so an answer with the SET is the wake-up, not the timeout); the SETs verify against replica 2's JWKS,
// the same keys as replica 1's.
func TestClusterStreamsCreatedOnOneReplicaAreServedByAnother(t *testing.T) {
	c := newTestCluster(t, 2)
	r1, r2 := c.replicas[0], c.replicas[1]
	cfg := r1.createPollStream()
	status, _, body := r2.call(http.MethodGet, "/ssf/streams?stream_id="+cfg.StreamID, r2.token, nil)
	if status != http.StatusOK || !strings.Contains(string(body), cfg.StreamID) {
		t.Fatalf("replica 2 reading a stream created on replica 1: %d %s", status, body)
	}
	_, _, jwks1 := r1.call(http.MethodGet, "/jwks.json", "", nil)
	_, _, jwks2 := r2.call(http.MethodGet, "/jwks.json", "", nil)
	if string(jwks1) != string(jwks2) || !strings.Contains(string(jwks1), `"kid"`) {
		t.Fatalf("the replicas publish different keys:\n%s\n%s", jwks1, jwks2)
	}

	type answer struct {
		resp *schemas.PollResponse
		err  error
	}
	polled := make(chan answer, 1)
	go func() {
		maxEvents := 10
		resp, err := r1.client.Poll(context.Background(), r2.on(cfg.Delivery.EndpointURL), schemas.PollRequest{MaxEvents: &maxEvents})
		polled <- answer{resp, err}
	}()
	waitFor(t, "the long poll waits on replica 2", func() bool { return r2.srv.PollWaiting(cfg.StreamID) })
	if status, out := r1.emit(revoked); status != http.StatusAccepted {
		t.Fatalf("emit on replica 1: %d %s", status, out)
	}
	a := <-polled
	if a.err != nil {
		t.Fatal(a.err)
	}
	if len(a.resp.Sets) != 1 {
		t.Fatalf("the long poll on replica 2 answered %d SETs, want the one emitted on replica 1", len(a.resp.Sets))
	}
	jwks, err := keys.NewRemoteJWKS(r2.base + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := receiver.NewVerifier(jwks, c.issuer, []string{cfg.Audience[0]})
	if err != nil {
		t.Fatal(err)
	}
	var ack []string
	for jti, tok := range a.resp.Sets {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("a SET polled from replica 2 does not verify with replica 2's keys: %v", err)
		}
		ack = append(ack, jti)
	}

	// Keys rotated through replica 2 sign what replica 1 emits next, and both publish the same JWKS again.
	status, _, body = r2.call(http.MethodPost, server.PathKeyRotation, r2.token, nil)
	if status != http.StatusOK {
		t.Fatalf("key rotation on replica 2: %d %s", status, body)
	}
	var rotated server.KeyRotation
	if err := json.Unmarshal(body, &rotated); err != nil {
		t.Fatal(err)
	}
	activeKids := map[string]bool{}
	for _, kid := range rotated.Active {
		activeKids[kid] = true
	}
	waitFor(t, "replica 1 publishes the keys replica 2 rotated", func() bool {
		_, _, j1 := r1.call(http.MethodGet, "/jwks.json", "", nil)
		_, _, j2 := r2.call(http.MethodGet, "/jwks.json", "", nil)
		return string(j1) == string(j2) && string(j1) != string(jwks1)
	})
	waitFor(t, "replica 1 signs with the rotated key", func() bool {
		if status, out := r1.emit(revoked); status != http.StatusAccepted {
			t.Fatalf("emit on replica 1: %d %s", status, out)
		}
		resp := r1.poll(cfg, schemas.PollRequest{ReturnImmediately: true, Ack: ack})
		ack = ack[:0]
		signedByNew := false
		for jti, tok := range resp.Sets {
			ack = append(ack, jti)
			header, _, err := keys.Decode(tok)
			if err != nil {
				t.Fatal(err)
			}
			var h struct {
				Kid string `json:"kid"`
			}
			if err := json.Unmarshal(header, &h); err != nil {
				t.Fatal(err)
			}
			signedByNew = signedByNew || activeKids[h.Kid]
		}
		return signedByNew
	})
}

// TestClusterKillSwitchIsEnforcedOnEveryReplica: an agent's token, minted through replica 2, passes the
// revocation middleware attached to each of three replicas; the kill switch pulled through replica 1 waits until
// every replica acknowledged it, and then the middleware of every replica refuses the token.
func TestClusterKillSwitchIsEnforcedOnEveryReplica(t *testing.T) {
	c := newTestCluster(t, 3)
	const agent = "spiffe://example.org/tenant/acme/agent/cluster-kill"
	secret := c.replicas[0].registerClient(issuer.ClientRequest{ID: agent, Tenant: "acme", Scopes: []string{"x"},
		Resources: []string{rsAudience}})
	status, out := c.replicas[1].form(issuer.PathToken, agent, secret, url.Values{"grant_type": {issuer.GrantClientCredentials}})
	if status != http.StatusOK {
		t.Fatalf("token through replica 2: %d %v", status, out)
	}
	tok := out["access_token"].(string)
	var rss []*httptest.Server
	for _, r := range c.replicas {
		jwks, err := keys.NewRemoteJWKS(r.base + "/oauth/jwks")
		if err != nil {
			t.Fatal(err)
		}
		g, err := revocation.NewGuard(revocation.GuardConfig{Issuer: c.issuer, Audiences: []string{rsAudience}, Keys: jwks,
			Index: r.srv.RevocationIndex()})
		if err != nil {
			t.Fatal(err)
		}
		rs := httptest.NewServer(g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok")
		})))
		t.Cleanup(rs.Close)
		rss = append(rss, rs)
	}
	call := func(rs *httptest.Server) int {
		req, _ := http.NewRequest(http.MethodGet, rs.URL, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	for i, rs := range rss {
		if got := call(rs); got != http.StatusOK {
			t.Fatalf("replica %d's middleware refuses a fresh token: %d", i+1, got)
		}
	}
	status, _, body := c.replicas[0].call(http.MethodPost, server.PathKillSwitch, clusterToken,
		server.KillSwitchRequest{Agent: agent, Reason: "compromised", Wait: "20s", Expect: 3})
	if status != http.StatusOK {
		t.Fatalf("kill switch: %d %s", status, body)
	}
	var resp server.KillSwitchResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Acknowledged < 3 {
		t.Fatalf("the kill switch was acknowledged by %d replicas, want 3: %s", resp.Acknowledged, body)
	}
	for i, rs := range rss {
		if got := call(rs); got != http.StatusUnauthorized {
			t.Fatalf("replica %d's middleware accepts the token after the kill switch: %d", i+1, got)
		}
	}
	// The issuer of every replica refuses the killed agent a new token.
	for i, r := range c.replicas {
		if status, out := r.form(issuer.PathToken, agent, secret, url.Values{"grant_type": {issuer.GrantClientCredentials}}); status != http.StatusBadRequest {
			t.Fatalf("replica %d minted a token for a killed agent: %d %v", i+1, status, out)
		}
	}
}

// arrivals lists the jtis of the SETs pushed to r, in arrival order, with when each arrived.
func (r *pushReceiver) arrivals() (jtis []string, at []time.Time) {
	for _, p := range r.requests() {
		jtis, at = append(jtis, jtiOf([]byte(p.body))), append(at, p.at)
	}
	return jtis, at
}

// emitted is what one emit answered: the jti queued for each stream.
func (h *harness) emitted(body string) (map[string]string, bool) {
	h.t.Helper()
	status, _, out := h.callNoFail(http.MethodPost, "/api/v1/events", h.token, body)
	if status != http.StatusAccepted {
		return nil, false
	}
	var accepted struct {
		Accepted []struct {
			SETs []struct {
				StreamID string `json:"stream_id"`
				JTI      string `json:"jti"`
			} `json:"sets"`
		} `json:"accepted"`
	}
	if err := json.Unmarshal(out, &accepted); err != nil || len(accepted.Accepted) != 1 {
		h.t.Errorf("emit answer: %s", out)
		return nil, false
	}
	jtis := map[string]string{}
	for _, s := range accepted.Accepted[0].SETs {
		jtis[s.StreamID] = s.JTI
	}
	return jtis, true
}

// callNoFail is call for a replica that may be down: a transport error is status 0, not a failed test.
func (h *harness) callNoFail(method, path, token, body string) (int, http.Header, []byte) {
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// TestClusterLosesNothingWhenAReplicaThenANATSNodeDies emits events at a steady rate through two replicas to a
// push stream and a poll stream; the replica that owns the push stream is killed a third of the way, and one of
// the three NATS nodes two thirds of the way. Every event the cluster accepted reaches the push receiver, in
// order, and the poller; a SET is delivered twice only if it was in flight when its replica died.
func TestClusterLosesNothingWhenAReplicaThenANATSNodeDies(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a replica and a NATS node")
	}
	c := newTestCluster(t, 2)
	rx := newPushReceiver(t)
	push := c.replicas[0].createPushStream(rx.URL+"/push", "Bearer cluster")
	poll := c.replicas[0].createPollStream()
	var owner int
	waitFor(t, "one replica owns the push stream", func() bool {
		n := 0
		for i, r := range c.replicas {
			if r.srv.OwnsStream(push.StreamID) {
				owner, n = i, n+1
			}
		}
		return n == 1
	})
	survivor := c.replicas[1-owner]

	const events = 240
	var mu sync.Mutex
	var pushWant, pollWant []string
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	polled := map[string]int{}
	pollDone := make(chan struct{})
	go func() { // the poller: long polls on the survivor, acknowledging what it got in the next request
		defer close(pollDone)
		var ack []string
		maxEvents := 50
		for ctx.Err() == nil {
			resp, err := c.replicas[0].client.Poll(ctx, survivor.on(poll.Delivery.EndpointURL),
				schemas.PollRequest{MaxEvents: &maxEvents, Ack: ack, ReturnImmediately: true})
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue // a NATS node is being lost: ask again, acknowledging the same
			}
			ack = ack[:0]
			mu.Lock()
			for jti := range resp.Sets {
				polled[jti]++
				ack = append(ack, jti)
			}
			mu.Unlock()
			if len(resp.Sets) == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	killed := false
	var disruptions []time.Time
	for i := range events {
		switch i {
		case events / 3:
			disruptions = append(disruptions, time.Now())
			c.replicas[owner].srv.Kill()
			killed = true
		case 2 * events / 3:
			disruptions = append(disruptions, time.Now())
			c.nats.StopNode(0)
		}
		via := c.replicas[i%2]
		if killed {
			via = survivor
		}
		jtis, ok := via.emitted(revoked)
		if ok {
			mu.Lock()
			pushWant = append(pushWant, jtis[push.StreamID])
			pollWant = append(pollWant, jtis[poll.StreamID])
			mu.Unlock()
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(pushWant) < events/2 {
		t.Fatalf("only %d of %d events were accepted", len(pushWant), events)
	}
	waitFor(t, "every accepted SET is pushed and polled", func() bool {
		got := map[string]bool{}
		jtis, _ := rx.arrivals()
		for _, j := range jtis {
			got[j] = true
		}
		mu.Lock()
		defer mu.Unlock()
		for _, j := range pushWant {
			if !got[j] {
				return false
			}
		}
		for _, j := range pollWant {
			if polled[j] == 0 {
				return false
			}
		}
		return true
	})
	stop()
	<-pollDone

	// Order: the first arrivals of the accepted SETs follow the order the cluster accepted them in (an emit whose
	// answer was lost may add SETs of its own, which are not counted). A SET arrives again only when a disruption
	// (the replica's death, the NATS node's loss) came between its push and the storing of its acknowledgement:
	// it first arrived shortly before a disruption, and again after it.
	const settle = 5 * time.Second // far longer than an acknowledgement takes, even on a loaded machine
	pushed, at := rx.arrivals()
	want := map[string]bool{}
	for _, j := range pushWant {
		want[j] = true
	}
	var first []string
	firstAt := map[string]time.Time{}
	dups := 0
	for i, j := range pushed {
		if t0, seen := firstAt[j]; seen {
			dups++
			inFlight := false
			for _, d := range disruptions {
				inFlight = inFlight || (t0.Before(d) && d.Sub(t0) < settle && at[i].After(d))
			}
			if !inFlight {
				t.Fatalf("SET %s was pushed at %s and again at %s, not across a disruption", j,
					t0.Format(time.StampMicro), at[i].Format(time.StampMicro))
			}
			continue
		}
		firstAt[j] = at[i]
		if want[j] {
			first = append(first, j)
		}
	}
	if len(first) != len(pushWant) {
		t.Fatalf("pushed %d of the %d accepted SETs", len(first), len(pushWant))
	}
	for i := range first {
		if first[i] != pushWant[i] {
			t.Fatalf("push order broken at %d: got %s, accepted %s", i, first[i], pushWant[i])
		}
	}
	t.Logf("accepted %d events; pushed %d SETs with %d repeats; polled %d", len(pushWant), len(pushed), dups, len(polled))
}
