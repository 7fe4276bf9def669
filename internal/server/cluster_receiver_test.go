package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/internal/server"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
)

// loadBalancer forwards each request to the next of its targets in turn, or answers 503 while it has none.
type loadBalancer struct {
	targets atomic.Pointer[[]*url.URL]
	next    atomic.Uint64
	srv     *httptest.Server
}

func newLoadBalancer(t *testing.T) *loadBalancer {
	lb := &loadBalancer{}
	lb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targets := lb.targets.Load()
		if targets == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		to := (*targets)[int(lb.next.Add(1))%len(*targets)]
		httputil.NewSingleHostReverseProxy(to).ServeHTTP(w, r)
	}))
	t.Cleanup(lb.srv.Close)
	return lb
}

func (lb *loadBalancer) to(replicas ...*harness) {
	var targets []*url.URL
	for _, h := range replicas {
		u, _ := url.Parse(h.base)
		targets = append(targets, u)
	}
	lb.targets.Store(&targets)
}

// TestClusterManagesEachReceiverRegistrationOnOneReplica: two replicas whose receiver subscribes to the cluster's
// own transmitter, through a push registration (the load balancer in front of the replicas spreads the pushes
// over both) and a poll registration. Each registration gets one stream; the verification events the managing
// replica asks for are accepted by whichever replica they are pushed to (spec/ssf.md VAL-11); every event emitted
// is handled once per registration; a push registration without push_url is refused.
func TestClusterManagesEachReceiverRegistrationOnOneReplica(t *testing.T) {
	lb := newLoadBalancer(t)
	regs := func(c *config.Config) {
		c.Receiver.Registrations = []config.Registration{
			{Name: "via-push", Issuer: c.Issuer, Token: clusterToken, Delivery: "push", Events: []string{"session-revoked"},
				PushURL: lb.srv.URL + receiver.PushPath + "via-push", PushAuthorization: "Bearer lb", VerifyInterval: time.Second},
			{Name: "via-poll", Issuer: c.Issuer, Token: clusterToken, Delivery: "poll", Events: []string{"session-revoked"}},
		}
	}
	c := newTestCluster(t, 2, regs)
	lb.to(c.replicas...)
	nc, err := nats.Connect(c.nats.URLs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	plain, durable := subscribe(t, nc)

	waitFor(t, "the leases are settled", c.leasesSettled)
	waitFor(t, "each registration has its stream on both replicas", func() bool {
		for _, r := range c.replicas {
			st := r.srv.Receiver().Statuses()
			if len(st) != 2 || st[0].StreamID == "" || st[1].StreamID == "" {
				return false
			}
		}
		return true
	})
	// Pushes come in order, alternately to each replica: once both accepted a verification event asked for after
	// they settled, each verification event asked for so far was pushed to one of them.
	lastVerified := func(i int) time.Time {
		return c.replicas[i].srv.Receiver().Statuses()[1].LastVerification // by name: via-poll, via-push
	}
	settled := time.Now()
	waitFor(t, "both replicas accepted a verification event the push registration's owner asked for", func() bool {
		return lastVerified(0).After(settled) && lastVerified(1).After(settled)
	})
	owners := 0
	for _, r := range c.replicas {
		if r.srv.OwnsStream("job.receiver-registration.via-push") {
			owners++
		}
	}
	if owners != 1 {
		t.Fatalf("%d replicas hold the lease of the push registration", owners)
	}

	streams, err := c.replicas[0].client.ListStreams(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byDescription := map[string][]schemas.StreamConfiguration{}
	for _, s := range streams {
		byDescription[s.Description] = append(byDescription[s.Description], s)
	}
	if len(streams) != 2 || len(byDescription["ssfd receiver via-push"]) != 1 || len(byDescription["ssfd receiver via-poll"]) != 1 {
		t.Fatalf("the transmitter has %d streams, want one per registration: %+v", len(streams), streams)
	}
	if got := byDescription["ssfd receiver via-push"][0].Delivery.EndpointURL; got != lb.srv.URL+receiver.PushPath+"via-push" {
		t.Fatalf("the push stream's endpoint is %s, want the load balancer's", got)
	}
	for i, r := range c.replicas {
		for _, st := range r.srv.Receiver().Statuses() {
			if id := byDescription["ssfd receiver "+st.Name][0].StreamID; st.StreamID != id {
				t.Errorf("replica %d has stream %s for %s, want %s", i+1, st.StreamID, st.Name, id)
			}
		}
	}

	var txns []string
	for i, r := range c.replicas {
		txns = append(txns, emitTxns(t, r, 10, "via-replica-"+string(rune('1'+i)))...)
	}
	want := 2 * len(txns)
	waitFor(t, "every event reached the NATS sink once per registration", func() bool {
		return plain.total() >= want && durable.total() >= want
	})
	waitFor(t, "the shared inbox is empty", func() bool {
		n, err := c.replicas[0].srv.Receiver().Backlog(context.Background())
		return err == nil && n == 0
	})
	plain.check(t, "the plain subscriber", []string{"via-push", "via-poll"}, txns)
	durable.check(t, "the JetStream consumer", []string{"via-push", "via-poll"}, txns)
	for i, r := range c.replicas {
		for _, st := range r.srv.Receiver().Statuses() {
			if len(st.Rejected) != 0 {
				t.Errorf("replica %d refused SETs of %s: %v", i+1, st.Name, st.Rejected)
			}
		}
	}

	t.Run("a push registration without push_url is refused", func(t *testing.T) {
		cfg := config.Default()
		cfg.DataDir, cfg.HTTPAddr, cfg.Issuer, cfg.Dev = t.TempDir(), "127.0.0.1:0", c.issuer, true
		cfg.Store, cfg.NATSURL, cfg.NATSReplicas, cfg.NATSPrefix = config.StoreJetStream, c.nats.URLs(), 3, c.prefix
		cfg.ReplicaID = "replica-misconfigured"
		cfg.Receiver.Registrations = []config.Registration{{Name: "no-push-url", Issuer: c.issuer, Token: clusterToken, Delivery: "push"}}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil {
			_ = srv.Shutdown(context.Background())
			t.Fatal("a clustered push registration without push_url was accepted")
		}
		if !strings.Contains(err.Error(), "no-push-url") || !strings.Contains(err.Error(), "push_url") {
			t.Fatalf("the error does not name the registration and push_url: %v", err)
		}
	})
}
