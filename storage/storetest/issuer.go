package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ssfd/ssfd/issuer"
)

// t0 is the issuer suite's clock: nodes are created and ops decided relative to it.
var t0 = time.Unix(1767225600, 0)

// at returns t0 plus sec seconds.
func at(sec int64) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// userRoot returns a human session root of idp|sub opened for client, created at sec and living an hour.
func userRoot(sid, sub, client, tenant string, sec int64) *issuer.Node {
	return &issuer.Node{ID: sid, Kind: issuer.NodeUser, Path: []string{sid}, MaxDepth: 3, Tenant: tenant,
		Principal: issuer.Principal{Issuer: "https://idp.example.com", Subject: sub}, ClientID: client,
		Scopes: []string{"read", "write"}, Resources: []string{"https://api.example.com"}, ACR: "mfa",
		AMR: []string{"pwd", "otp"}, AuthTime: at(sec).Unix(), CreatedAt: at(sec), ExpiresAt: at(sec + 3600)}
}

// workloadRoot returns an agent's own root node bound to jkt, created at sec and living an hour.
func workloadRoot(sid, client, jkt string, sec int64) *issuer.Node {
	return &issuer.Node{ID: sid, Kind: issuer.NodeWorkload, Path: []string{sid}, MaxDepth: 3, Tenant: "acme",
		Principal: issuer.Principal{Issuer: "https://issuer.example.com", Subject: client}, ClientID: client,
		JKT: jkt, Scopes: []string{"read"}, Resources: []string{"https://api.example.com"},
		CreatedAt: at(sec), ExpiresAt: at(sec + 3600)}
}

// delegated returns a node one hop below parent, acting as client, created at sec and expiring with its parent.
func delegated(parent *issuer.Node, sid, client string, sec int64) *issuer.Node {
	return &issuer.Node{ID: sid, Kind: issuer.NodeDelegated, Parent: parent.ID, Path: append(slices.Clone(parent.Path), sid),
		Depth: parent.Depth + 1, MaxDepth: parent.MaxDepth, Tenant: parent.Tenant, Principal: parent.Principal,
		ClientID: client, Actors: append([]string{client}, parent.Actors...), Scopes: []string{"read"},
		Resources: parent.Resources, CreatedAt: at(sec), ExpiresAt: parent.ExpiresAt}
}

func createNodes(t *testing.T, st issuer.Store, nodes ...*issuer.Node) {
	t.Helper()
	for _, n := range nodes {
		if err := st.CreateNode(context.Background(), n); err != nil {
			t.Fatalf("CreateNode %s: %v", n.ID, err)
		}
	}
}

func revoke(t *testing.T, st issuer.Store, op issuer.Op) issuer.Op {
	t.Helper()
	got, err := st.Revoke(context.Background(), op)
	if err != nil {
		t.Fatalf("Revoke %s: %v", op.ID, err)
	}
	return got
}

func revokeNode(id, sid string, sec int64) issuer.Op {
	return issuer.Op{ID: id, Kind: issuer.OpRevokeNode, SID: sid, At: at(sec), ExpiresAt: at(sec + 3600)}
}

func keyOp(id string, kind issuer.OpKind, key issuer.MarkKey, sec int64) issuer.Op {
	return issuer.Op{ID: id, Kind: kind, Key: key, At: at(sec), ExpiresAt: at(sec + 3600)}
}

func mark(kind issuer.MarkKind, value string) issuer.MarkKey {
	return issuer.MarkKey{Kind: kind, Value: value}
}

// revokedSIDs returns the ids among sids whose node is revoked, failing on unknown ones.
func revokedSIDs(t *testing.T, st issuer.Store, sids ...string) []string {
	t.Helper()
	var out []string
	for _, sid := range sids {
		n, err := st.Node(context.Background(), sid)
		if err != nil {
			t.Fatalf("Node %s: %v", sid, err)
		}
		if !n.RevokedAt.IsZero() {
			out = append(out, sid)
		}
	}
	return out
}

func standing(t *testing.T, st issuer.Store, q issuer.Query) issuer.Standing {
	t.Helper()
	s, err := st.Standing(context.Background(), q)
	if err != nil {
		t.Fatalf("Standing(%+v): %v", q, err)
	}
	return s
}

// parentsFirst checks that got holds exactly the sids of want, each node after its parent when both are there.
func parentsFirst(t *testing.T, what string, got []string, nodes map[string]*issuer.Node, want ...string) {
	t.Helper()
	if fmt.Sprint(slices.Sorted(slices.Values(got))) != fmt.Sprint(slices.Sorted(slices.Values(want))) {
		t.Fatalf("%s = %v, want %v in some order", what, got, want)
	}
	for i, sid := range got {
		if p := slices.Index(got, nodes[sid].Parent); p > i {
			t.Fatalf("%s = %v: %s comes before its parent", what, got, sid)
		}
	}
}

func sidsOf(nodes []*issuer.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

func opIDs(ops []issuer.Op) []string {
	out := make([]string, len(ops))
	for i, op := range ops {
		out[i] = fmt.Sprint(op.ID, "#", op.Seq)
	}
	return out
}

// tree is a user session with two branches: r → a, b; a → a1, a2; a1 → a1x; b → b1.
func tree(t *testing.T, st issuer.Store) map[string]*issuer.Node {
	t.Helper()
	r := userRoot("r", "alice", "agent-a", "acme", 0)
	a, b := delegated(r, "a", "agent-b", 10), delegated(r, "b", "agent-c", 10)
	a1, a2, b1 := delegated(a, "a1", "agent-d", 20), delegated(a, "a2", "agent-e", 20), delegated(b, "b1", "agent-d", 20)
	a1x := delegated(a1, "a1x", "agent-f", 30)
	createNodes(t, st, r, a, b, a1, a2, b1, a1x)
	return map[string]*issuer.Node{"r": r, "a": a, "b": b, "a1": a1, "a2": a2, "b1": b1, "a1x": a1x}
}

// TestIssuerStore runs the issuer.Store conformance suite against the stores open returns, one per subtest.
func TestIssuerStore(t *testing.T, open func(t *testing.T) issuer.Store) {
	t.Run("clients", func(t *testing.T) { testClients(t, open) })
	t.Run("nodes", func(t *testing.T) { testNodes(t, open) })
	t.Run("revocation", func(t *testing.T) { testRevocation(t, open) })
	t.Run("watermarks", func(t *testing.T) { testWatermarks(t, open) })
	t.Run("log", func(t *testing.T) { testLog(t, open) })
	t.Run("refresh tokens and one-time values", func(t *testing.T) { testOneTime(t, open) })
	t.Run("workload nodes", func(t *testing.T) { testWorkloads(t, open) })
	t.Run("honours a cancelled context", func(t *testing.T) {
		st := open(t)
		cctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := st.CreateClient(cctx, &issuer.Client{ID: "c"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("CreateClient: %v", err)
		}
		if err := st.CreateNode(cctx, userRoot("r", "alice", "c", "acme", 0)); !errors.Is(err, context.Canceled) {
			t.Fatalf("CreateNode: %v", err)
		}
		if _, err := st.Revoke(cctx, revokeNode("op", "r", 1)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Revoke: %v", err)
		}
		if _, err := st.Standing(cctx, issuer.Query{JTI: "j"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Standing: %v", err)
		}
		if err := st.UseOnce(cctx, "k", at(60)); !errors.Is(err, context.Canceled) {
			t.Fatalf("UseOnce: %v", err)
		}
		if ops, _ := st.Ops(context.Background(), 0, 10); len(ops) != 0 {
			t.Fatalf("a cancelled Revoke was logged: %v", opIDs(ops))
		}
	})
}

func client(id string) *issuer.Client {
	return &issuer.Client{ID: id, Name: "Invoice bot", Tenant: "acme", Class: "billing",
		GrantTypes: []string{issuer.GrantClientCredentials, issuer.GrantTokenExchange}, Scopes: []string{"read"},
		Resources: []string{"https://api.example.com"}, MaxDelegationDepth: 3, Actors: []string{"agent-x"},
		TokenTTL: 300, AuthMethod: issuer.AuthPrivateKeyJWT, JWKS: []byte(`{"keys":[]}`), CreatedAt: at(0)}
}

func testClients(t *testing.T, open func(t *testing.T) issuer.Store) {
	ctx := context.Background()
	t.Run("registers, gets and lists clients ordered by ID", func(t *testing.T) {
		st := open(t)
		for _, id := range []string{"spiffe://example.org/b", "spiffe://example.org/a", "svc-c"} {
			if err := st.CreateClient(ctx, client(id)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.Client(ctx, "spiffe://example.org/a")
		if err != nil || got.ID != "spiffe://example.org/a" || got.Tenant != "acme" || got.Class != "billing" ||
			fmt.Sprint(got.GrantTypes) != fmt.Sprint(client("").GrantTypes) || got.MaxDelegationDepth != 3 ||
			got.TokenTTL != 300 || got.AuthMethod != issuer.AuthPrivateKeyJWT || string(got.JWKS) != `{"keys":[]}` ||
			fmt.Sprint(got.Actors) != "[agent-x]" || !got.CreatedAt.Equal(at(0)) || got.Disabled {
			t.Fatalf("Client = %+v, %v", got, err)
		}
		list, err := st.Clients(ctx)
		if err != nil || len(list) != 3 || list[0].ID != "spiffe://example.org/a" || list[1].ID != "spiffe://example.org/b" || list[2].ID != "svc-c" {
			t.Fatalf("Clients = %v, %v", list, err)
		}
	})
	t.Run("lists no clients in an empty store", func(t *testing.T) {
		if list, err := open(t).Clients(ctx); err != nil || len(list) != 0 {
			t.Fatalf("Clients = %v, %v", list, err)
		}
	})
	t.Run("refuses a second client with the same ID", func(t *testing.T) {
		st := open(t)
		if err := st.CreateClient(ctx, client("c")); err != nil {
			t.Fatal(err)
		}
		other := client("c")
		other.Name = "impostor"
		if err := st.CreateClient(ctx, other); !errors.Is(err, issuer.ErrExists) {
			t.Fatalf("err = %v, want ErrExists", err)
		}
		if got, _ := st.Client(ctx, "c"); got.Name != "Invoice bot" {
			t.Fatalf("the refused client replaced the first: %q", got.Name)
		}
	})
	t.Run("reports unknown clients as not found", func(t *testing.T) {
		st := open(t)
		if _, err := st.Client(ctx, "nobody"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("Client: %v", err)
		}
		if _, err := st.UpdateClient(ctx, "nobody", func(*issuer.Client) error { return nil }); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("UpdateClient: %v", err)
		}
	})
	t.Run("updates in one step and writes nothing when the change fails", func(t *testing.T) {
		st := open(t)
		if err := st.CreateClient(ctx, client("c")); err != nil {
			t.Fatal(err)
		}
		got, err := st.UpdateClient(ctx, "c", func(c *issuer.Client) error { c.Disabled = true; c.Scopes = []string{"read", "admin"}; return nil })
		if err != nil || !got.Disabled || fmt.Sprint(got.Scopes) != "[read admin]" {
			t.Fatalf("UpdateClient = %+v, %v", got, err)
		}
		if again, _ := st.Client(ctx, "c"); !again.Disabled || fmt.Sprint(again.Scopes) != "[read admin]" {
			t.Fatalf("the update was not stored: %+v", again)
		}
		boom := errors.New("boom")
		if _, err := st.UpdateClient(ctx, "c", func(c *issuer.Client) error { c.Disabled = false; return boom }); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the change's error", err)
		}
		if again, _ := st.Client(ctx, "c"); !again.Disabled {
			t.Fatal("a failed change was written")
		}
	})
	t.Run("returns copies", func(t *testing.T) {
		st := open(t)
		c := client("c")
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Scopes[0] = "changed-after-create"
		got, _ := st.Client(ctx, "c")
		got.Scopes[0] = "changed-after-get"
		if again, _ := st.Client(ctx, "c"); again.Scopes[0] != "read" {
			t.Fatalf("changing a client outside the store changed the store: %v", again.Scopes)
		}
	})
}

func testNodes(t *testing.T, open func(t *testing.T) issuer.Store) {
	ctx := context.Background()
	t.Run("stores nodes and refuses a second node with the same sid", func(t *testing.T) {
		st := open(t)
		r := userRoot("r", "alice", "agent-a", "acme", 0)
		c := delegated(r, "c", "agent-b", 60)
		c.Class, c.JKT = "billing", "jkt-1"
		createNodes(t, st, r, c)
		got, err := st.Node(ctx, "c")
		if err != nil || got.ID != "c" || got.Kind != issuer.NodeDelegated || got.Parent != "r" || fmt.Sprint(got.Path) != "[r c]" ||
			got.Depth != 1 || got.MaxDepth != 3 || got.Tenant != "acme" || got.Principal != r.Principal || got.ClientID != "agent-b" ||
			fmt.Sprint(got.Actors) != "[agent-b]" || got.Class != "billing" || got.JKT != "jkt-1" || fmt.Sprint(got.Scopes) != "[read]" ||
			!got.CreatedAt.Equal(at(60)) || !got.ExpiresAt.Equal(at(3600)) || !got.RevokedAt.IsZero() || got.RevokedBy != "" {
			t.Fatalf("Node = %+v, %v", got, err)
		}
		if got, _ := st.Node(ctx, "r"); got.ACR != "mfa" || fmt.Sprint(got.AMR) != "[pwd otp]" || got.AuthTime != at(0).Unix() {
			t.Fatalf("root = %+v", got)
		}
		dup := userRoot("r", "mallory", "agent-z", "acme", 100)
		if err := st.CreateNode(ctx, dup); !errors.Is(err, issuer.ErrExists) {
			t.Fatalf("err = %v, want ErrExists", err)
		}
		if got, _ := st.Node(ctx, "r"); got.Principal.Subject != "alice" {
			t.Fatal("the refused node replaced the first")
		}
		if _, err := st.Node(ctx, "unknown"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("Node(unknown): %v", err)
		}
	})
	t.Run("refuses a child of an unknown parent", func(t *testing.T) {
		st := open(t)
		orphan := delegated(userRoot("gone", "alice", "agent-a", "acme", 0), "c", "agent-b", 60)
		if err := st.CreateNode(ctx, orphan); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if _, err := st.Node(ctx, "c"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("the refused node was stored: %v", err)
		}
	})
	t.Run("refuses a child of a parent expired at its creation", func(t *testing.T) {
		st := open(t)
		r := userRoot("r", "alice", "agent-a", "acme", 0)
		createNodes(t, st, r)
		if err := st.CreateNode(ctx, delegated(r, "late", "agent-b", 3600)); !errors.Is(err, issuer.ErrRevoked) {
			t.Fatalf("child created when its parent expires: %v, want ErrRevoked", err)
		}
		if err := st.CreateNode(ctx, delegated(r, "in-time", "agent-b", 3599)); err != nil {
			t.Fatalf("child created a second before its parent expires: %v", err)
		}
		if _, err := st.Node(ctx, "late"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("the refused node was stored: %v", err)
		}
	})
	t.Run("refuses a child of a revoked parent or ancestor", func(t *testing.T) {
		st := open(t)
		r := userRoot("r", "alice", "agent-a", "acme", 0)
		a := delegated(r, "a", "agent-b", 10)
		createNodes(t, st, r, a)
		revoke(t, st, revokeNode("op-1", "r", 20))
		for _, parent := range []*issuer.Node{r, a} {
			// Created before the revocation's time, but after it was committed: still refused.
			if err := st.CreateNode(ctx, delegated(parent, "below-"+parent.ID, "agent-c", 15)); !errors.Is(err, issuer.ErrRevoked) {
				t.Fatalf("child of %s: %v, want ErrRevoked", parent.ID, err)
			}
		}
		if subtree, _ := st.Subtree(ctx, "r"); len(subtree) != 2 {
			t.Fatalf("refused nodes were stored: %v", sidsOf(subtree))
		}
	})
	t.Run("returns a subtree with parents before children", func(t *testing.T) {
		st := open(t)
		nodes := tree(t, st)
		for sid, want := range map[string][]string{
			"r": {"r", "a", "b", "a1", "a2", "b1", "a1x"}, "a": {"a", "a1", "a2", "a1x"}, "b": {"b", "b1"}, "a1x": {"a1x"},
		} {
			got, err := st.Subtree(ctx, sid)
			if err != nil {
				t.Fatalf("Subtree(%s): %v", sid, err)
			}
			if got[0].ID != sid {
				t.Fatalf("Subtree(%s) starts with %s", sid, got[0].ID)
			}
			parentsFirst(t, "Subtree("+sid+")", sidsOf(got), nodes, want...)
		}
		if got, _ := st.Subtree(ctx, "a1"); got[1].Parent != "a1" || fmt.Sprint(got[1].Path) != "[r a a1 a1x]" {
			t.Fatalf("Subtree(a1)[1] = %+v", got[1])
		}
		if _, err := st.Subtree(ctx, "unknown"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("Subtree(unknown): %v", err)
		}
	})
	t.Run("returns copies", func(t *testing.T) {
		st := open(t)
		r := userRoot("r", "alice", "agent-a", "acme", 0)
		createNodes(t, st, r)
		r.Scopes[0] = "changed-after-create"
		got, _ := st.Node(ctx, "r")
		got.Path[0] = "changed-after-get"
		if again, _ := st.Node(ctx, "r"); again.Scopes[0] != "read" || again.Path[0] != "r" {
			t.Fatalf("changing a node outside the store changed the store: %+v", again)
		}
	})
}

func testRevocation(t *testing.T, open func(t *testing.T) issuer.Store) {
	ctx := context.Background()
	t.Run("refuses an invalid op and logs nothing", func(t *testing.T) {
		st := open(t)
		for _, op := range []issuer.Op{
			{Kind: issuer.OpRevokeJTI, JTI: "j", At: at(0)},
			{ID: "op", Kind: issuer.OpRevokeJTI, JTI: "j"},
			{ID: "op", Kind: issuer.OpRevokeNode, At: at(0)},
			{ID: "op", Kind: issuer.OpWatermark, Key: mark("planet", "earth"), At: at(0)},
			{ID: "op", Kind: "forget", At: at(0)},
		} {
			if _, err := st.Revoke(ctx, op); err == nil {
				t.Fatalf("Revoke(%+v) succeeded", op)
			}
		}
		if ops, err := st.Ops(ctx, 0, 10); err != nil || len(ops) != 0 {
			t.Fatalf("Ops = %v, %v", opIDs(ops), err)
		}
	})
	t.Run("revoke_node revokes the node and every descendant", func(t *testing.T) {
		st := open(t)
		nodes := tree(t, st)
		op := revoke(t, st, revokeNode("op-1", "a", 600))
		if op.ID != "op-1" || op.Seq != 1 || op.Kind != issuer.OpRevokeNode || op.SID != "a" || len(op.Nodes) == 0 || op.Nodes[0] != "a" {
			t.Fatalf("Revoke = %+v", op)
		}
		parentsFirst(t, "Nodes", op.Nodes, nodes, "a", "a1", "a2", "a1x")
		all := []string{"r", "a", "b", "a1", "a2", "b1", "a1x"}
		if got := revokedSIDs(t, st, all...); fmt.Sprint(got) != "[a a1 a2 a1x]" {
			t.Fatalf("revoked nodes = %v", got)
		}
		if n, _ := st.Node(ctx, "a1x"); !n.RevokedAt.Equal(at(600)) || n.RevokedBy != "op-1" {
			t.Fatalf("grandchild = revoked at %v by %q", n.RevokedAt, n.RevokedBy)
		}
		if s := standing(t, st, issuer.Query{JTI: "j", Path: []string{"r", "a", "a1", "a1x"}}); s.Revoked != "node a" {
			t.Fatalf("Revoked = %q, want node a", s.Revoked)
		}
		if s := standing(t, st, issuer.Query{JTI: "j", Path: []string{"r", "b", "b1"}}); s.Revoked != "" {
			t.Fatalf("a sibling branch is revoked: %q", s.Revoked)
		}
		// Revoking the root now revokes only what is left; a's subtree keeps its first revocation.
		op = revoke(t, st, revokeNode("op-2", "r", 700))
		if op.Seq != 2 || len(op.Nodes) == 0 || op.Nodes[0] != "r" {
			t.Fatalf("second Revoke = %+v", op)
		}
		parentsFirst(t, "Nodes", op.Nodes, nodes, "r", "b", "b1")
		if n, _ := st.Node(ctx, "a1"); n.RevokedBy != "op-1" || !n.RevokedAt.Equal(at(600)) {
			t.Fatalf("a revoked node was revoked again: by %q at %v", n.RevokedBy, n.RevokedAt)
		}
		if s := standing(t, st, issuer.Query{Path: []string{"r", "a", "a1"}}); s.Revoked != "node r" {
			t.Fatalf("Revoked = %q, want the first revoked node of the path", s.Revoked)
		}
		if op := revoke(t, st, revokeNode("op-3", "a", 800)); op.Seq != 3 || len(op.Nodes) != 0 {
			t.Fatalf("revoking a revoked node = %+v, want it logged with no nodes", op)
		}
	})
	t.Run("a repeated op id changes nothing", func(t *testing.T) {
		st := open(t)
		tree(t, st)
		first := revoke(t, st, revokeNode("op-1", "a", 600))
		revoke(t, st, issuer.Op{ID: "op-2", Kind: issuer.OpRevokeJTI, JTI: "j1", At: at(610), ExpiresAt: at(900)})
		for _, again := range []issuer.Op{revokeNode("op-1", "a", 600), revokeNode("op-1", "b", 650)} {
			got := revoke(t, st, again)
			if got.ID != "op-1" || got.Seq != first.Seq || got.SID != "a" || !got.At.Equal(at(600)) || len(got.Nodes) != 0 {
				t.Fatalf("repeat = %+v, want the stored op without nodes", got)
			}
		}
		if got := revokedSIDs(t, st, "b", "b1"); len(got) != 0 {
			t.Fatalf("a repeat revoked %v", got)
		}
		ops, err := st.Ops(ctx, 0, 10)
		if err != nil || fmt.Sprint(opIDs(ops)) != "[op-1#1 op-2#2]" || len(ops[0].Nodes) != 4 {
			t.Fatalf("Ops = %v %v, %v", opIDs(ops), ops, err)
		}
	})
	t.Run("revoke_jti revokes one token", func(t *testing.T) {
		st := open(t)
		tree(t, st)
		op := revoke(t, st, issuer.Op{ID: "op-1", Kind: issuer.OpRevokeJTI, JTI: "j1", At: at(600), ExpiresAt: at(900)})
		if op.Seq != 1 || op.JTI != "j1" || len(op.Nodes) != 0 {
			t.Fatalf("Revoke = %+v", op)
		}
		if s := standing(t, st, issuer.Query{JTI: "j1", Path: []string{"r", "a"}, IssuedAt: at(500)}); s.Revoked != "jti" {
			t.Fatalf("Revoked = %q, want jti", s.Revoked)
		}
		if s := standing(t, st, issuer.Query{JTI: "j2", Path: []string{"r", "a"}, IssuedAt: at(500)}); s.Revoked != "" {
			t.Fatalf("another token is revoked: %q", s.Revoked)
		}
		if got := revokedSIDs(t, st, "r", "a"); len(got) != 0 {
			t.Fatalf("revoke_jti revoked nodes %v", got)
		}
		revoke(t, st, revokeNode("op-2", "a", 610))
		if s := standing(t, st, issuer.Query{JTI: "j1", Path: []string{"r", "a"}}); s.Revoked != "jti" {
			t.Fatalf("Revoked = %q, want the jti first", s.Revoked)
		}
	})
	t.Run("revoke_node of an unknown sid is logged and revokes paths through it", func(t *testing.T) {
		st := open(t)
		tree(t, st)
		op := revoke(t, st, revokeNode("op-1", "s_elsewhere", 600))
		if op.Seq != 1 || op.SID != "s_elsewhere" || len(op.Nodes) != 0 {
			t.Fatalf("Revoke = %+v", op)
		}
		if _, err := st.Node(ctx, "s_elsewhere"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("revoking an unknown sid created a node: %v", err)
		}
		if s := standing(t, st, issuer.Query{Path: []string{"r", "s_elsewhere", "x"}}); s.Revoked != "node s_elsewhere" {
			t.Fatalf("Revoked = %q, want node s_elsewhere", s.Revoked)
		}
		if s := standing(t, st, issuer.Query{Path: []string{"r", "a"}, IssuedAt: at(500)}); s.Revoked != "" {
			t.Fatalf("Revoked = %q", s.Revoked)
		}
		if ops, _ := st.Ops(ctx, 0, 10); len(ops) != 1 || ops[0].SID != "s_elsewhere" {
			t.Fatalf("Ops = %+v", ops)
		}
	})
	t.Run("disable blocks issuance for a key and enable lifts it", func(t *testing.T) {
		st := open(t)
		sub, cli := mark(issuer.MarkSubject, "https://idp.example.com|alice"), mark(issuer.MarkClient, "agent-a")
		q := issuer.Query{Path: []string{"r"}, Keys: []issuer.MarkKey{sub, cli, mark(issuer.MarkTenant, "acme")}}
		if s := standing(t, st, q); !s.Blocked.IsZero() || s.Revoked != "" || !s.LatestMark.IsZero() {
			t.Fatalf("Standing before any op = %+v", s)
		}
		revoke(t, st, keyOp("op-1", issuer.OpDisable, cli, 600))
		if s := standing(t, st, q); s.Blocked != cli || s.Revoked != "" || !s.LatestMark.IsZero() {
			t.Fatalf("Standing = %+v, want blocked by %v only", s, cli)
		}
		revoke(t, st, keyOp("op-2", issuer.OpDisable, sub, 610))
		if s := standing(t, st, q); s.Blocked != sub {
			t.Fatalf("Blocked = %v, want the first blocked key of the query, %v", s.Blocked, sub)
		}
		if s := standing(t, st, issuer.Query{Keys: []issuer.MarkKey{mark(issuer.MarkClient, "agent-b")}}); !s.Blocked.IsZero() {
			t.Fatalf("another client is blocked: %v", s.Blocked)
		}
		revoke(t, st, keyOp("op-3", issuer.OpEnable, sub, 620))
		if s := standing(t, st, q); s.Blocked != cli {
			t.Fatalf("Blocked = %v after enabling %v", s.Blocked, sub)
		}
		revoke(t, st, keyOp("op-4", issuer.OpEnable, cli, 630))
		if s := standing(t, st, q); !s.Blocked.IsZero() {
			t.Fatalf("Blocked = %v after enabling everything", s.Blocked)
		}
		if ops, _ := st.Ops(ctx, 0, 10); fmt.Sprint(opIDs(ops)) != "[op-1#1 op-2#2 op-3#3 op-4#4]" || ops[2].Key != sub || ops[2].Kind != issuer.OpEnable {
			t.Fatalf("Ops = %v", ops)
		}
	})
}

// markFixture holds four trees: u1 (alice via agent-a, tenant acme, class billing) with a child d1 acting as
// agent-d; u2 (bob via agent-b, tenant globex); w1 (agent-c on its own, tenant acme, class ci).
func markFixture(t *testing.T, st issuer.Store) map[string]*issuer.Node {
	t.Helper()
	u1 := userRoot("u1", "alice", "agent-a", "acme", 0)
	u1.Class = "billing"
	d1 := delegated(u1, "d1", "agent-d", 10)
	u2 := userRoot("u2", "bob", "agent-b", "globex", 0)
	w1 := workloadRoot("w1", "agent-c", "", 0)
	w1.Class = "ci"
	createNodes(t, st, u1, d1, u2, w1)
	return map[string]*issuer.Node{"u1": u1, "d1": d1, "u2": u2, "w1": w1}
}

func testWatermarks(t *testing.T, open func(t *testing.T) issuer.Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		key  issuer.MarkKey
		want []string
	}{
		{mark(issuer.MarkSubject, "https://idp.example.com|alice"), []string{"u1", "d1"}},
		{mark(issuer.MarkSubject, "https://issuer.example.com|agent-c"), []string{"w1"}},
		{mark(issuer.MarkClient, "agent-a"), []string{"u1", "d1"}},
		{mark(issuer.MarkClient, "agent-d"), []string{"d1"}},
		{mark(issuer.MarkActor, "agent-d"), []string{"d1"}},
		{mark(issuer.MarkActor, "agent-c"), []string{"w1"}},
		{mark(issuer.MarkActor, "agent-a"), nil}, // a user root has no actors
		{mark(issuer.MarkTenant, "acme"), []string{"u1", "d1", "w1"}},
		{mark(issuer.MarkTenant, "globex"), []string{"u2"}},
		{mark(issuer.MarkClass, "billing"), []string{"u1", "d1"}},
		{mark(issuer.MarkClass, "ci"), []string{"w1"}},
		{mark(issuer.MarkClient, "nobody"), nil},
		{mark(issuer.MarkSigningKey, "kid-1"), nil},
	} {
		t.Run("a watermark on "+tc.key.String()+" revokes the nodes it matches", func(t *testing.T) {
			st := open(t)
			nodes := markFixture(t, st)
			op := revoke(t, st, keyOp("op-1", issuer.OpWatermark, tc.key, 600))
			parentsFirst(t, "Nodes", op.Nodes, nodes, tc.want...)
			if got := revokedSIDs(t, st, "u1", "d1", "u2", "w1"); fmt.Sprint(got) != fmt.Sprint(slices.DeleteFunc([]string{"u1", "d1", "u2", "w1"}, func(s string) bool { return !slices.Contains(tc.want, s) })) {
				t.Fatalf("revoked nodes = %v, want %v", got, tc.want)
			}
			for _, sid := range tc.want {
				if n, _ := st.Node(ctx, sid); n.RevokedBy != "op-1" || !n.RevokedAt.Equal(at(600)) {
					t.Fatalf("%s revoked by %q at %v", sid, n.RevokedBy, n.RevokedAt)
				}
			}
		})
	}
	t.Run("a watermark revokes expired nodes but not revoked ones, and not nodes of a repeat", func(t *testing.T) {
		st := open(t)
		nodes := markFixture(t, st)
		revoke(t, st, revokeNode("op-1", "d1", 100))
		op := revoke(t, st, keyOp("op-2", issuer.OpWatermark, mark(issuer.MarkTenant, "acme"), 7200))
		parentsFirst(t, "Nodes", op.Nodes, nodes, "u1", "w1")
		if n, _ := st.Node(ctx, "d1"); n.RevokedBy != "op-1" {
			t.Fatalf("d1 revoked by %q, want op-1", n.RevokedBy)
		}
		createNodes(t, st, userRoot("u3", "carol", "agent-a", "acme", 7300))
		if again := revoke(t, st, keyOp("op-2", issuer.OpWatermark, mark(issuer.MarkTenant, "acme"), 7200)); len(again.Nodes) != 0 || again.Seq != op.Seq {
			t.Fatalf("repeat = %+v", again)
		}
		if got := revokedSIDs(t, st, "u3"); len(got) != 0 {
			t.Fatal("a repeated watermark revoked a node created after it")
		}
	})
	t.Run("keeps the latest time per key and revokes tokens issued at or before it", func(t *testing.T) {
		st := open(t)
		cli, tenant := mark(issuer.MarkClient, "agent-a"), mark(issuer.MarkTenant, "acme")
		revoke(t, st, keyOp("op-1", issuer.OpWatermark, cli, 100))
		revoke(t, st, keyOp("op-2", issuer.OpWatermark, cli, 50))
		keys := []issuer.MarkKey{mark(issuer.MarkSubject, "https://idp.example.com|alice"), cli, tenant}
		for _, tc := range []struct {
			iat  time.Time
			want string
		}{
			{at(99), "watermark client"},
			{at(100), "watermark client"},
			{at(100).Add(500 * time.Millisecond), "watermark client"}, // iat is compared at whole seconds
			{at(101), ""},
			{time.Time{}, ""}, // a request, not a token: watermarks do not revoke it
		} {
			s := standing(t, st, issuer.Query{JTI: "j", Path: []string{"r"}, Keys: keys, IssuedAt: tc.iat})
			if s.Revoked != tc.want || !s.LatestMark.Equal(at(100)) || !s.Blocked.IsZero() {
				t.Fatalf("Standing(iat %v) = %+v, want %q and the latest mark %v", tc.iat, s, tc.want, at(100))
			}
		}
		revoke(t, st, keyOp("op-3", issuer.OpWatermark, tenant, 200))
		if s := standing(t, st, issuer.Query{Keys: keys, IssuedAt: at(150)}); s.Revoked != "watermark tenant" || !s.LatestMark.Equal(at(200)) {
			t.Fatalf("Standing(iat 150) = %+v", s)
		}
		if s := standing(t, st, issuer.Query{Keys: keys, IssuedAt: at(50)}); s.Revoked != "watermark client" {
			t.Fatalf("Revoked = %q, want the first key of the query", s.Revoked)
		}
		if s := standing(t, st, issuer.Query{Keys: []issuer.MarkKey{mark(issuer.MarkClient, "agent-b")}, IssuedAt: at(1)}); s.Revoked != "" || !s.LatestMark.IsZero() {
			t.Fatalf("Standing of another client = %+v", s)
		}
		if ops, _ := st.Ops(ctx, 0, 10); len(ops) != 3 || !ops[1].At.Equal(at(50)) {
			t.Fatalf("an older watermark must still be logged: %v", ops)
		}
	})
}

func testLog(t *testing.T, open func(t *testing.T) issuer.Store) {
	ctx := context.Background()
	t.Run("pages through the log in Seq order", func(t *testing.T) {
		st := open(t)
		subject := &issuer.OpSubject{Principal: issuer.Principal{Issuer: "https://idp.example.com", Subject: "alice"}, ClientID: "agent-a", Tenant: "acme"}
		for i := range 5 {
			op := issuer.Op{ID: fmt.Sprint("op-", i), Kind: issuer.OpRevokeJTI, JTI: fmt.Sprint("j", i), At: at(int64(i)), ExpiresAt: at(900),
				Tenant: "acme", Reason: "leaked", Initiator: "admin", Subject: subject}
			if got := revoke(t, st, op); got.Seq != uint64(i+1) {
				t.Fatalf("op %d got Seq %d", i, got.Seq)
			}
		}
		for _, tc := range []struct {
			after uint64
			limit int
			want  string
		}{
			{0, 2, "[op-0#1 op-1#2]"},
			{2, 2, "[op-2#3 op-3#4]"},
			{4, 2, "[op-4#5]"},
			{5, 2, "[]"},
			{1, 10, "[op-1#2 op-2#3 op-3#4 op-4#5]"},
			{0, 0, "[op-0#1 op-1#2 op-2#3 op-3#4 op-4#5]"}, // no limit given: a page of the default size
		} {
			ops, err := st.Ops(ctx, tc.after, tc.limit)
			if err != nil || fmt.Sprint(opIDs(ops)) != tc.want {
				t.Fatalf("Ops(%d, %d) = %v, %v, want %s", tc.after, tc.limit, opIDs(ops), err, tc.want)
			}
		}
		ops, _ := st.Ops(ctx, 2, 1)
		got := ops[0]
		if got.Kind != issuer.OpRevokeJTI || got.JTI != "j2" || !got.At.Equal(at(2)) || !got.ExpiresAt.Equal(at(900)) || got.Tenant != "acme" ||
			got.Reason != "leaked" || got.Initiator != "admin" || got.Subject == nil || *got.Subject != *subject {
			t.Fatalf("logged op = %+v", got)
		}
	})
	t.Run("keeps the outbox cursor moving forward only", func(t *testing.T) {
		st := open(t)
		if seq, err := st.Emitted(ctx); err != nil || seq != 0 {
			t.Fatalf("Emitted = %d, %v, want 0", seq, err)
		}
		for _, tc := range []struct{ set, want uint64 }{{3, 3}, {2, 3}, {3, 3}, {0, 3}, {7, 7}} {
			if err := st.SetEmitted(ctx, tc.set); err != nil {
				t.Fatalf("SetEmitted(%d): %v", tc.set, err)
			}
			if seq, err := st.Emitted(ctx); err != nil || seq != tc.want {
				t.Fatalf("Emitted after SetEmitted(%d) = %d, %v, want %d", tc.set, seq, err, tc.want)
			}
		}
	})
}

func refresh(hash string) *issuer.Refresh {
	return &issuer.Refresh{Hash: hash, NodeID: "r", ClientID: "agent-a", Scopes: []string{"read"},
		Resources: []string{"https://api.example.com"}, JKT: "jkt-1", ParentJTI: "pj", IssuedAt: at(0), ExpiresAt: at(86400)}
}

func testOneTime(t *testing.T, open func(t *testing.T) issuer.Store) {
	ctx := context.Background()
	t.Run("rotates a refresh token once", func(t *testing.T) {
		st := open(t)
		if err := st.PutRefresh(ctx, refresh("h1")); err != nil {
			t.Fatal(err)
		}
		if err := st.PutRefresh(ctx, refresh("h1")); !errors.Is(err, issuer.ErrExists) {
			t.Fatalf("second PutRefresh: %v, want ErrExists", err)
		}
		if got, err := st.Refresh(ctx, "h1"); err != nil || got.Hash != "h1" || got.Used || got.NodeID != "r" || got.JKT != "jkt-1" || !got.ExpiresAt.Equal(at(86400)) {
			t.Fatalf("Refresh = %+v, %v", got, err)
		}
		if _, err := st.Refresh(ctx, "h2"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("Refresh(unknown): %v, want ErrNotFound", err)
		}
		used, err := st.RotateRefresh(ctx, "h1", refresh("h2"))
		if err != nil || used.Hash != "h1" || !used.Used || used.NodeID != "r" || used.ClientID != "agent-a" || fmt.Sprint(used.Scopes) != "[read]" ||
			fmt.Sprint(used.Resources) != "[https://api.example.com]" || used.JKT != "jkt-1" || used.ParentJTI != "pj" ||
			!used.IssuedAt.Equal(at(0)) || !used.ExpiresAt.Equal(at(86400)) {
			t.Fatalf("RotateRefresh = %+v, %v", used, err)
		}
		if got, err := st.Refresh(ctx, "h1"); err != nil || !got.Used {
			t.Fatalf("Refresh after rotation = %+v, %v, want it used", got, err)
		}
		if got, err := st.Refresh(ctx, "h2"); err != nil || got.Used || got.Hash != "h2" {
			t.Fatalf("successor = %+v, %v", got, err)
		}
		replayed, err := st.RotateRefresh(ctx, "h1", refresh("h3"))
		if !errors.Is(err, issuer.ErrReplay) || replayed == nil || replayed.Hash != "h1" || !replayed.Used || replayed.NodeID != "r" {
			t.Fatalf("replay = %+v, %v, want the record and ErrReplay", replayed, err)
		}
		if _, err := st.RotateRefresh(ctx, "h3", nil); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("a replay stored its successor: %v", err)
		}
		if used, err := st.RotateRefresh(ctx, "h2", nil); err != nil || used.Hash != "h2" || !used.Used {
			t.Fatalf("rotating the successor = %+v, %v", used, err)
		}
		if _, err := st.RotateRefresh(ctx, "h2", nil); !errors.Is(err, issuer.ErrReplay) {
			t.Fatalf("second use of the successor: %v", err)
		}
		if _, err := st.RotateRefresh(ctx, "unknown", refresh("h4")); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("RotateRefresh(unknown): %v", err)
		}
	})
	t.Run("rotates all or nothing", func(t *testing.T) {
		st := open(t)
		for _, h := range []string{"h1", "h2"} {
			if err := st.PutRefresh(ctx, refresh(h)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.RotateRefresh(ctx, "h1", refresh("h2")); !errors.Is(err, issuer.ErrExists) {
			t.Fatalf("rotating onto a stored hash: %v, want ErrExists", err)
		}
		if got, _ := st.Refresh(ctx, "h1"); got.Used {
			t.Fatal("a failed rotation marked the token used")
		}
		if used, err := st.RotateRefresh(ctx, "h1", refresh("h3")); err != nil || !used.Used {
			t.Fatalf("a failed rotation marked the token used: %+v, %v", used, err)
		}
	})
	t.Run("refuses a one-time key until it expires", func(t *testing.T) {
		st := open(t)
		future, past := time.Unix(4102444800, 0), time.Unix(1000000000, 0) // 2100 and 2001
		if err := st.UseOnce(ctx, "assertion|jti-1", future); err != nil {
			t.Fatal(err)
		}
		if err := st.UseOnce(ctx, "assertion|jti-1", future); !errors.Is(err, issuer.ErrReplay) {
			t.Fatalf("replay: %v, want ErrReplay", err)
		}
		if err := st.UseOnce(ctx, "assertion|jti-2", future); err != nil {
			t.Fatalf("another key: %v", err)
		}
		for i := range 250 {
			if err := st.UseOnce(ctx, fmt.Sprint("dpop|", i), past); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 250 {
			if err := st.UseOnce(ctx, fmt.Sprint("dpop|", i), future); err != nil {
				t.Fatalf("an expired key is refused: %v", err)
			}
		}
		for _, key := range []string{"assertion|jti-1", "assertion|jti-2", "dpop|0", "dpop|249"} {
			if err := st.UseOnce(ctx, key, future); !errors.Is(err, issuer.ErrReplay) {
				t.Fatalf("%s: %v, want ErrReplay", key, err)
			}
		}
	})
}

func testWorkloads(t *testing.T, open func(t *testing.T) issuer.Store) {
	ctx := context.Background()
	// agent-c with jkt-1: old (0), mid (600), newest (1200); bearer (300); jkt-2 (1800). Each lives an hour.
	fixture := func(t *testing.T, st issuer.Store) {
		t.Helper()
		old, mid, newest := workloadRoot("old", "agent-c", "jkt-1", 0), workloadRoot("mid", "agent-c", "jkt-1", 600), workloadRoot("newest", "agent-c", "jkt-1", 1200)
		user := userRoot("user", "alice", "agent-c", "acme", 1500)
		child := delegated(mid, "child", "agent-c", 1600)
		user.JKT, child.JKT = "jkt-1", "jkt-1" // newer, bound to the same key, but not workload roots
		createNodes(t, st, mid, old, newest, workloadRoot("bearer", "agent-c", "", 300), workloadRoot("other-key", "agent-c", "jkt-2", 1800),
			workloadRoot("other-client", "agent-x", "jkt-1", 1900), user, child)
	}
	for _, tc := range []struct {
		name, jkt string
		now       int64
		revoke    []string
		want      string
	}{
		{"picks the newest active node", "jkt-1", 1300, nil, "newest"},
		{"skips a revoked node", "jkt-1", 1300, []string{"newest"}, "mid"},
		{"skips revoked nodes", "jkt-1", 1300, []string{"newest", "mid"}, "old"},
		{"skips an expired node", "jkt-1", 4000, []string{"newest"}, "mid"},
		{"finds none when every node expired", "jkt-1", 4800, nil, ""},
		{"finds none when every node is revoked", "jkt-1", 1300, []string{"newest", "mid", "old"}, ""},
		{"keeps bearer nodes apart", "", 1300, nil, "bearer"},
		{"keeps keys apart", "jkt-2", 1900, nil, "other-key"},
		{"finds none for an unknown key", "jkt-3", 1300, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			fixture(t, st)
			for i, sid := range tc.revoke {
				revoke(t, st, revokeNode(fmt.Sprint("op-", i), sid, 1250))
			}
			got, err := st.WorkloadNode(ctx, "agent-c", tc.jkt, at(tc.now))
			switch {
			case tc.want == "" && !errors.Is(err, issuer.ErrNotFound):
				t.Fatalf("WorkloadNode = %+v, %v, want ErrNotFound", got, err)
			case tc.want != "" && (err != nil || got.ID != tc.want || got.Kind != issuer.NodeWorkload || got.ClientID != "agent-c" || got.JKT != tc.jkt):
				t.Fatalf("WorkloadNode = %+v, %v, want %s", got, err, tc.want)
			}
		})
	}
	t.Run("finds none for an unknown client", func(t *testing.T) {
		st := open(t)
		fixture(t, st)
		if got, err := st.WorkloadNode(ctx, "agent-unknown", "jkt-1", at(1300)); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("WorkloadNode = %+v, %v", got, err)
		}
	})
}
