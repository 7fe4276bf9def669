package bolt_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
	"github.com/ssfd/ssfd/storage/storetest"
	"github.com/ssfd/ssfd/streams"
)

func open(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "ssfd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestStoreConformance(t *testing.T) {
	storetest.TestStore(t, func(t *testing.T) streams.Store { return open(t) })
}

func TestQueueConformance(t *testing.T) {
	storetest.TestQueue(t, func(t *testing.T) storetest.Backend { return open(t) })
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ssfd.db")
	db, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	id := streams.NewID()
	s := &streams.Stream{Config: schemas.StreamConfiguration{StreamID: string(id)}, Owner: "c", Status: schemas.StatusPaused, CreatedAt: time.Unix(5, 0)}
	if err := db.CreateStream(ctx, s); err != nil {
		t.Fatal(err)
	}
	sub, _ := schemas.NewEmail("a@example.com")
	if err := db.SetSubject(ctx, id, streams.SubjectEntry{Subject: sub, Included: true}); err != nil {
		t.Fatal(err)
	}
	items := []streams.Item{{Stream: id, JTI: "j1", SET: "a.b.c", Queued: time.Unix(7, 0)}, {Stream: id, JTI: "j2", SET: "d.e.f", Queued: time.Unix(8, 0)}}
	if err := db.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := db.Reject(ctx, id, []streams.DeliveryError{{JTI: "j0", Error: schemas.SETError{Err: schemas.ErrInvalidKey}}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Enqueue(ctx, items); !errors.Is(err, streams.ErrClosed) {
		t.Fatalf("Enqueue after Close: %v", err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v %v", info.Mode().Perm(), err)
	}
	db, err = bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.GetStream(ctx, id)
	if err != nil || got.Status != schemas.StatusPaused {
		t.Fatalf("stream after reopen: %+v %v", got, err)
	}
	subs, _ := db.Subjects(ctx, id)
	pending, _, _ := db.Pending(ctx, id, 10)
	rejected, _ := db.Rejected(ctx, id)
	if len(subs) != 1 || len(pending) != 2 || pending[0].JTI != "j1" || pending[1].SET != "d.e.f" || len(rejected) != 1 {
		t.Fatalf("after reopen: %d subjects, %v pending, %d rejected", len(subs), pending, len(rejected))
	}
}

func TestASecondOpenFailsWithAClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ssfd.db")
	db, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := bolt.Open(path, bolt.WithTimeout(50*time.Millisecond)); !errors.Is(err, bolt.ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
}

func TestInboxConformance(t *testing.T) {
	storetest.TestInbox(t, func(t *testing.T) receiver.Inbox { return open(t) })
}

func TestIssuerStoreConformance(t *testing.T) {
	storetest.TestIssuerStore(t, func(t *testing.T) issuer.Store { return open(t) })
}

func TestReopenKeepsTheIssuerState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ssfd.db")
	db, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	root := &issuer.Node{ID: "r", Kind: issuer.NodeWorkload, Path: []string{"r"}, Tenant: "acme", ClientID: "agent-a",
		Principal: issuer.Principal{Issuer: "https://issuer", Subject: "agent-a"}, JKT: "jkt", CreatedAt: time.Unix(100, 0), ExpiresAt: time.Unix(4000, 0)}
	child := &issuer.Node{ID: "c", Kind: issuer.NodeDelegated, Parent: "r", Path: []string{"r", "c"}, Depth: 1, Tenant: "acme",
		ClientID: "agent-b", Actors: []string{"agent-b"}, CreatedAt: time.Unix(200, 0), ExpiresAt: time.Unix(4000, 0)}
	tenant := issuer.MarkKey{Kind: issuer.MarkTenant, Value: "acme"}
	mustDo(t, db.CreateClient(ctx, &issuer.Client{ID: "agent-a", Tenant: "acme", CreatedAt: time.Unix(1, 0)}))
	mustDo(t, db.CreateNode(ctx, root))
	mustDo(t, db.CreateNode(ctx, child))
	if _, err := db.Revoke(ctx, issuer.Op{ID: "op-1", Kind: issuer.OpDisable, Key: tenant, At: time.Unix(250, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Revoke(ctx, issuer.Op{ID: "op-2", Kind: issuer.OpWatermark, Key: tenant, At: time.Unix(300, 0)}); err != nil {
		t.Fatal(err)
	}
	mustDo(t, db.SetEmitted(ctx, 1))
	mustDo(t, db.PutRefresh(ctx, &issuer.Refresh{Hash: "h1", NodeID: "r", ClientID: "agent-a"}))
	mustDo(t, db.UseOnce(ctx, "k", time.Unix(4102444800, 0)))
	mustDo(t, db.Close())

	db, err = bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if c, err := db.Client(ctx, "agent-a"); err != nil || c.Tenant != "acme" {
		t.Fatalf("client after reopen: %+v %v", c, err)
	}
	sub, err := db.Subtree(ctx, "r")
	if err != nil || len(sub) != 2 || sub[1].ID != "c" || sub[1].RevokedBy != "op-2" {
		t.Fatalf("nodes after reopen: %+v %v", sub, err)
	}
	ops, err := db.Ops(ctx, 0, 10)
	if err != nil || len(ops) != 2 || ops[1].ID != "op-2" || ops[1].Seq != 2 || len(ops[1].Nodes) != 2 {
		t.Fatalf("ops after reopen: %+v %v", ops, err)
	}
	s, err := db.Standing(ctx, issuer.Query{Keys: []issuer.MarkKey{tenant}, IssuedAt: time.Unix(300, 0)})
	if err != nil || s.Revoked != "watermark tenant" || !s.LatestMark.Equal(time.Unix(300, 0)) || s.Blocked != tenant {
		t.Fatalf("standing after reopen: %+v %v", s, err)
	}
	if seq, err := db.Emitted(ctx); err != nil || seq != 1 {
		t.Fatalf("outbox cursor after reopen: %d %v", seq, err)
	}
	if r, err := db.Refresh(ctx, "h1"); err != nil || r.NodeID != "r" || r.Used {
		t.Fatalf("refresh token after reopen: %+v %v", r, err)
	}
	if err := db.UseOnce(ctx, "k", time.Unix(4102444800, 0)); !errors.Is(err, issuer.ErrReplay) {
		t.Fatalf("one-time key after reopen: %v", err)
	}
	if op, err := db.Revoke(ctx, issuer.Op{ID: "op-3", Kind: issuer.OpRevokeJTI, JTI: "j", At: time.Unix(400, 0)}); err != nil || op.Seq != 3 {
		t.Fatalf("the log goes on after reopen: %+v %v", op, err)
	}
}

func TestIssuerStoreClosed(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	mustDo(t, db.Close())
	node := &issuer.Node{ID: "r", Kind: issuer.NodeUser, Path: []string{"r"}, ExpiresAt: time.Unix(4000, 0)}
	_, errClient := db.Client(ctx, "c")
	_, errClients := db.Clients(ctx)
	_, errUpdate := db.UpdateClient(ctx, "c", func(*issuer.Client) error { return nil })
	_, errNode := db.Node(ctx, "r")
	_, errSubtree := db.Subtree(ctx, "r")
	_, errWorkload := db.WorkloadNode(ctx, "c", "", time.Unix(1, 0))
	_, errRevoke := db.Revoke(ctx, issuer.Op{ID: "op", Kind: issuer.OpRevokeJTI, JTI: "j", At: time.Unix(1, 0)})
	_, errStanding := db.Standing(ctx, issuer.Query{JTI: "j"})
	_, errOps := db.Ops(ctx, 0, 10)
	_, errEmitted := db.Emitted(ctx)
	_, errRotate := db.RotateRefresh(ctx, "h", nil)
	_, errRefresh := db.Refresh(ctx, "h")
	for name, err := range map[string]error{
		"CreateClient": db.CreateClient(ctx, &issuer.Client{ID: "c"}), "Client": errClient, "Clients": errClients,
		"UpdateClient": errUpdate, "CreateNode": db.CreateNode(ctx, node), "Node": errNode, "Subtree": errSubtree,
		"WorkloadNode": errWorkload, "Revoke": errRevoke, "Standing": errStanding, "Ops": errOps, "Emitted": errEmitted,
		"SetEmitted": db.SetEmitted(ctx, 1), "PutRefresh": db.PutRefresh(ctx, &issuer.Refresh{Hash: "h"}),
		"Refresh": errRefresh, "RotateRefresh": errRotate, "UseOnce": db.UseOnce(ctx, "k", time.Unix(1, 0)),
	} {
		if !errors.Is(err, issuer.ErrClosed) {
			t.Errorf("%s after Close: %v, want issuer.ErrClosed", name, err)
		}
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
