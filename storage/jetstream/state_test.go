package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/storage/jetstream"
	"github.com/ssfd/ssfd/storage/storetest"
)

// stateLog registers the deletion of the log stream of opts when t ends, after the States t opens later are
// closed, so that the cluster does not carry every test's stream.
func stateLog(t testing.TB, nc *nats.Conn, opts jetstream.Options) {
	t.Helper()
	cleanUp(t, nc, "the log of "+opts.Prefix, func(ctx context.Context, js natsjs.JetStream) error {
		return js.DeleteStream(ctx, opts.Prefix+"_STATE")
	})
}

// cleanUp runs del when t ends, with a JetStream context and ten seconds; an asset already gone is fine.
func cleanUp(t testing.TB, nc *nats.Conn, what string, del func(context.Context, natsjs.JetStream) error) {
	t.Helper()
	t.Cleanup(func() {
		js, err := natsjs.New(nc)
		if err != nil {
			t.Error(err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := del(ctx, js); err != nil && !errors.Is(err, natsjs.ErrStreamNotFound) && !errors.Is(err, natsjs.ErrBucketNotFound) {
			t.Errorf("delete %s: %v", what, err)
		}
	})
}

// stateOpen opens a State of opts on nc with a view of its own, closed when t ends.
func stateOpen(t testing.TB, nc *nats.Conn, opts jetstream.Options) *jetstream.State {
	t.Helper()
	return stateOpenAt(t, nc, opts, filepath.Join(t.TempDir(), "view.db"))
}

// stateOpenAt opens a State of opts on nc with its view at path, closed when t ends.
func stateOpenAt(t testing.TB, nc *nats.Conn, opts jetstream.Options, path string) *jetstream.State {
	t.Helper()
	s, err := jetstream.OpenState(context.Background(), nc, opts, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// stateFresh opens a State on a log of its own.
func stateFresh(t *testing.T) *jetstream.State {
	nc, opts := connect(t), options()
	stateLog(t, nc, opts)
	return stateOpen(t, nc, opts)
}

func TestStateIssuerStoreConformance(t *testing.T) {
	storetest.TestIssuerStore(t, func(t *testing.T) issuer.Store { return stateFresh(t) })
}

func TestStateInboxConformance(t *testing.T) {
	storetest.TestInbox(t, func(t *testing.T) receiver.Inbox { return stateFresh(t) })
}

// TestStateReplicasShareOneState: two replicas on different NATS nodes see each other's writes at once, and
// the multi-key checks hold across them.
func TestStateReplicasShareOneState(t *testing.T) {
	ctx := context.Background()
	opts := options()
	stateLog(t, connect(t), opts)
	one, two := stateOpen(t, connectTo(t, 0), opts), stateOpen(t, connectTo(t, 1), opts)
	t0 := time.Unix(1767225600, 0)
	root := &issuer.Node{ID: "r", Kind: issuer.NodeUser, Path: []string{"r"}, MaxDepth: 3, Tenant: "acme", ClientID: "agent-a",
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	child := func(sid string) *issuer.Node {
		return &issuer.Node{ID: sid, Kind: issuer.NodeDelegated, Parent: "r", Path: []string{"r", sid}, Depth: 1, MaxDepth: 3,
			Tenant: "acme", ClientID: "agent-b", Actors: []string{"agent-b"}, CreatedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Hour)}
	}

	t.Run("a client created through one replica is read through the other at once", func(t *testing.T) {
		for i := range 5 {
			id := fmt.Sprint("agent-", i)
			mustState(t, one.CreateClient(ctx, &issuer.Client{ID: id, Tenant: "acme", Scopes: []string{"read"}, CreatedAt: t0}))
			if c, err := two.Client(ctx, id); err != nil || c.Tenant != "acme" {
				t.Fatalf("Client(%s) through the other replica = %+v, %v", id, c, err)
			}
		}
		if err := two.CreateClient(ctx, &issuer.Client{ID: "agent-0"}); !errors.Is(err, issuer.ErrExists) {
			t.Fatalf("a second agent-0 through the other replica: %v, want ErrExists", err)
		}
	})
	t.Run("a node revoked through one replica refuses children through the other", func(t *testing.T) {
		mustState(t, one.CreateNode(ctx, root))
		mustState(t, two.CreateNode(ctx, child("before")))
		op, err := one.Revoke(ctx, issuer.Op{ID: "op-1", Kind: issuer.OpRevokeNode, SID: "r", At: t0.Add(2 * time.Minute), ExpiresAt: t0.Add(time.Hour)})
		if err != nil || op.Seq != 1 || fmt.Sprint(op.Nodes) != "[r before]" {
			t.Fatalf("Revoke = %+v, %v", op, err)
		}
		if err := two.CreateNode(ctx, child("after")); !errors.Is(err, issuer.ErrRevoked) {
			t.Fatalf("CreateNode below the revoked node through the other replica: %v, want ErrRevoked", err)
		}
		again, err := two.Revoke(ctx, issuer.Op{ID: "op-1", Kind: issuer.OpRevokeNode, SID: "r", At: t0.Add(2 * time.Minute)})
		if err != nil || again.Seq != 1 || len(again.Nodes) != 0 {
			t.Fatalf("the repeat through the other replica = %+v, %v", again, err)
		}
	})
	t.Run("a SET accepted through one replica is a replay through the other", func(t *testing.T) {
		e := receiver.Entry{Registration: "tx", Issuer: "https://tx", JTI: "j1", Claims: []byte(`{}`), Received: t0}
		if fresh, err := one.Accept(ctx, e, t0.Add(time.Hour)); err != nil || !fresh {
			t.Fatalf("first Accept = %v, %v", fresh, err)
		}
		if fresh, err := two.Accept(ctx, e, t0.Add(time.Hour)); err != nil || fresh {
			t.Fatalf("VAL-12: the replay through the other replica = %v, %v, want false", fresh, err)
		}
		if n, err := two.Len(ctx); err != nil || n != 1 {
			t.Fatalf("Len through the other replica = %d, %v", n, err)
		}
		mustState(t, one.UseOnce(ctx, "assertion|j1", t0.Add(100*365*24*time.Hour)))
		if err := two.UseOnce(ctx, "assertion|j1", t0.Add(100*365*24*time.Hour)); !errors.Is(err, issuer.ErrReplay) {
			t.Fatalf("a one-time key through the other replica: %v, want ErrReplay", err)
		}
	})
	t.Run("concurrent updates of one client through both replicas all land", func(t *testing.T) {
		const perWriter = 5
		var wg sync.WaitGroup
		for w, s := range []*jetstream.State{one, two, one, two} {
			wg.Go(func() {
				for i := range perWriter {
					scope := fmt.Sprint("w", w, "-", i)
					if _, err := s.UpdateClient(ctx, "agent-0", func(c *issuer.Client) error {
						c.Scopes = append(c.Scopes, scope)
						return nil
					}); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		for _, s := range []*jetstream.State{one, two} {
			c, err := s.Client(ctx, "agent-0")
			if err != nil || len(c.Scopes) != 1+4*perWriter {
				t.Fatalf("scopes after the updates = %v, %v, want read and %d more", c.Scopes, err, 4*perWriter)
			}
		}
	})
	t.Run("both replicas hold the same state", func(t *testing.T) {
		if a, b := stateDump(t, one), stateDump(t, two); a != b {
			t.Fatalf("the replicas differ:\n%s\n%s", a, b)
		}
	})
}

// TestStateReopenRebuildsTheStateFromTheLog: a State opened on a new view, or on the old view's path, finds
// everything the log holds.
func TestStateReopenRebuildsTheStateFromTheLog(t *testing.T) {
	ctx := context.Background()
	nc, opts := connect(t), options()
	stateLog(t, nc, opts)
	path := filepath.Join(t.TempDir(), "view.db")
	first, err := jetstream.OpenState(ctx, nc, opts, path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1767225600, 0)
	mustState(t, first.CreateClient(ctx, &issuer.Client{ID: "agent-a", Tenant: "acme", CreatedAt: t0}))
	if _, err := first.UpdateClient(ctx, "agent-a", func(c *issuer.Client) error { c.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	mustState(t, first.CreateNode(ctx, &issuer.Node{ID: "r", Kind: issuer.NodeWorkload, Path: []string{"r"}, Tenant: "acme",
		ClientID: "agent-a", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	tenant := issuer.MarkKey{Kind: issuer.MarkTenant, Value: "acme"}
	if _, err := first.Revoke(ctx, issuer.Op{ID: "op-1", Kind: issuer.OpWatermark, Key: tenant, At: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	mustState(t, first.SetEmitted(ctx, 1))
	mustState(t, first.PutRefresh(ctx, &issuer.Refresh{Hash: "h1", NodeID: "r", ClientID: "agent-a"}))
	if _, err := first.RotateRefresh(ctx, "h1", &issuer.Refresh{Hash: "h2", NodeID: "r", ClientID: "agent-a"}); err != nil {
		t.Fatal(err)
	}
	mustState(t, first.UseOnce(ctx, "k", t0.Add(100*365*24*time.Hour)))
	for _, jti := range []string{"j1", "j2"} {
		if _, err := first.Accept(ctx, receiver.Entry{Issuer: "https://tx", JTI: jti, Received: t0}, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	mustState(t, first.Handled(ctx, []uint64{1}))
	want := stateDump(t, first)
	mustState(t, first.Close())
	if _, err := first.Client(ctx, "agent-a"); !errors.Is(err, issuer.ErrClosed) {
		t.Fatalf("Client after Close: %v, want ErrClosed", err)
	}

	// The old view's file is stale by the time it is reopened: a State on another view wrote after it closed.
	for _, path := range []string{filepath.Join(t.TempDir(), "view.db"), path} {
		again := stateOpenAt(t, nc, opts, path)
		if got := stateDump(t, again); got != want {
			t.Fatalf("state rebuilt at %s:\n%s\nwant\n%s", path, got, want)
		}
		if err := again.UseOnce(ctx, "k", t0.Add(time.Hour)); !errors.Is(err, issuer.ErrReplay) {
			t.Fatalf("a one-time key after reopening: %v, want ErrReplay", err)
		}
		if fresh, err := again.Accept(ctx, receiver.Entry{Issuer: "https://tx", JTI: "j1", Received: t0}, t0.Add(time.Hour)); err != nil || fresh {
			t.Fatalf("a replay after reopening = %v, %v", fresh, err)
		}
		mustState(t, again.CreateClient(ctx, &issuer.Client{ID: "agent-" + filepath.Base(filepath.Dir(path)), CreatedAt: t0}))
		want = stateDump(t, again)
		mustState(t, again.Close())
	}
}

// TestStateStopsWhenItsLogIsRecreated: a State never serves a view of a log that was deleted and created again.
func TestStateStopsWhenItsLogIsRecreated(t *testing.T) {
	ctx := context.Background()
	nc, opts := connect(t), options()
	stateLog(t, nc, opts)
	old := stateOpen(t, nc, opts)
	mustState(t, old.CreateClient(ctx, &issuer.Client{ID: "agent-a"}))
	js, err := natsjs.New(nc)
	mustState(t, err)
	mustState(t, js.DeleteStream(ctx, opts.Prefix+"_STATE"))
	other := stateOpen(t, nc, opts)
	if _, err := other.Client(ctx, "agent-a"); !errors.Is(err, issuer.ErrNotFound) {
		t.Fatalf("Client on the new log: %v, want ErrNotFound", err)
	}
	if c, err := old.Client(ctx, "agent-a"); err == nil || errors.Is(err, issuer.ErrNotFound) {
		t.Fatalf("Client on the old view = %+v, %v, want the State stopped", c, err)
	}
	if err := old.CreateClient(ctx, &issuer.Client{ID: "agent-b"}); err == nil {
		t.Fatal("a stopped State took a write")
	}
}

// stateDump renders what a State holds, for comparing replicas.
func stateDump(t *testing.T, s *jetstream.State) string {
	t.Helper()
	ctx := context.Background()
	clients, err := s.Clients(ctx)
	mustState(t, err)
	nodes, _ := s.Subtree(ctx, "r")
	ops, err := s.Ops(ctx, 0, 100)
	mustState(t, err)
	emitted, err := s.Emitted(ctx)
	mustState(t, err)
	waiting, err := s.Waiting(ctx, 0, 100)
	mustState(t, err)
	var refresh []*issuer.Refresh
	for _, h := range []string{"h1", "h2"} {
		if r, err := s.Refresh(ctx, h); err == nil {
			refresh = append(refresh, r)
		}
	}
	out := fmt.Sprintf("emitted %d\n", emitted)
	for _, c := range clients {
		out += fmt.Sprintf("client %s %v disabled=%v\n", c.ID, c.Scopes, c.Disabled)
	}
	for _, n := range nodes {
		out += fmt.Sprintf("node %s revoked by %q at %v\n", n.ID, n.RevokedBy, n.RevokedAt.Unix())
	}
	for _, op := range ops {
		out += fmt.Sprintf("op %s #%d nodes %v\n", op.ID, op.Seq, op.Nodes)
	}
	for _, e := range waiting {
		out += fmt.Sprintf("entry #%d %s %s\n", e.Seq, e.Issuer, e.JTI)
	}
	for _, r := range refresh {
		out += fmt.Sprintf("refresh %s used=%v\n", r.Hash, r.Used)
	}
	return out
}

func mustState(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkStateRead measures a linearizable read (Client): one request for the log's last sequence, shared by
// concurrent readers, then a read of the view.
func BenchmarkStateRead(b *testing.B) {
	ctx := context.Background()
	nc, opts := connect(b), options()
	stateLog(b, nc, opts)
	s := stateOpen(b, nc, opts)
	if err := s.CreateClient(ctx, &issuer.Client{ID: "c"}); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Client(ctx, "c"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Client(ctx, "c"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkStateWrite measures a write (UseOnce): a publish to the R3 log, then applying it to the view.
func BenchmarkStateWrite(b *testing.B) {
	ctx := context.Background()
	nc, opts := connect(b), options()
	stateLog(b, nc, opts)
	s := stateOpen(b, nc, opts)
	until := time.Now().Add(time.Hour)
	i := 0
	for b.Loop() {
		i++
		if err := s.UseOnce(ctx, fmt.Sprint("k", i), until); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStateSurvivesACommandItsViewRefuses: a SET whose jti is too long for the view's keys is refused with an
// error, the same on every replica, and the State goes on: the next Accept works, and a State rebuilt from the
// log (which holds the refused command for good) opens.
func TestStateSurvivesACommandItsViewRefuses(t *testing.T) {
	nc, opts := connect(t), options()
	stateLog(t, nc, opts)
	s := stateOpen(t, nc, opts)
	ctx := context.Background()
	huge := receiver.Entry{Registration: "r", Issuer: "https://tx.example.net", JTI: strings.Repeat("j", 40<<10),
		Claims: []byte(`{}`), Received: time.Now()}
	if _, err := s.Accept(ctx, huge, time.Now().Add(time.Hour)); err == nil {
		t.Fatal("a 40 KB jti was accepted")
	}
	ok, err := s.Accept(ctx, receiver.Entry{Registration: "r", Issuer: "https://tx.example.net", JTI: "j1",
		Claims: []byte(`{}`), Received: time.Now()}, time.Now().Add(time.Hour))
	if err != nil || !ok {
		t.Fatalf("the State stopped after a refused command: %v, %v", ok, err)
	}
	again := stateOpen(t, connectTo(t, 1), opts)
	if n, err := again.Len(ctx); err != nil || n != 1 {
		t.Fatalf("a State rebuilt from the log: %d waiting, %v", n, err)
	}
}

// BenchmarkStateReplay measures what a replica's start costs: a State opened on a log of 20,000 one-time keys
// replays them all into a new cache before it returns. It reports commands replayed per second.
func BenchmarkStateReplay(b *testing.B) {
	ctx := context.Background()
	nc, opts := connect(b), options()
	stateLog(b, nc, opts)
	s := stateOpen(b, nc, opts)
	const commands = 20000
	until := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < commands; i += 32 {
				if err := s.UseOnce(ctx, fmt.Sprint("k", i), until); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	_ = s.Close()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		r, err := jetstream.OpenState(ctx, nc, opts, filepath.Join(b.TempDir(), fmt.Sprintf("replay-%d.db", i)))
		if err != nil {
			b.Fatal(err)
		}
		_ = r.Close()
	}
	b.ReportMetric(float64(commands*b.N)/time.Since(start).Seconds(), "commands/s")
}
