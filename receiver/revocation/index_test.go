package revocation_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssfd/ssfd/receiver/revocation"
	"github.com/ssfd/ssfd/schemas"
)

// The helpers of this file carry an idx prefix: other test files of the package are written concurrently.

// idxT0 is the issuer's clock at the start of every scenario: whole seconds, as iat and op times are.
var idxT0 = time.Unix(1767225600, 0)

// idxSec returns idxT0 plus n seconds.
func idxSec(n int) time.Time { return idxT0.Add(time.Duration(n) * time.Second) }

// idxReady returns an empty index that answers checks.
func idxReady(t testing.TB) *revocation.Index {
	t.Helper()
	ix := revocation.NewIndex()
	ix.SetReady()
	return ix
}

// idxApply applies op and fails the test if it is refused.
func idxApply(t testing.TB, ix *revocation.Index, op revocation.Op) {
	t.Helper()
	if err := ix.Apply(op); err != nil {
		t.Fatalf("Apply(%+v): %v", op, err)
	}
}

var idxOpSeq atomic.Int64

// idxID returns a fresh op id.
func idxID() string { return fmt.Sprintf("op-%d", idxOpSeq.Add(1)) }

func idxRevokeJTI(jti string, at time.Time) revocation.Op {
	return revocation.Op{ID: idxID(), Kind: revocation.OpRevokeJTI, JTI: jti, At: at}
}

func idxRevokeNode(sid string, at time.Time) revocation.Op {
	return revocation.Op{ID: idxID(), Kind: revocation.OpRevokeNode, SID: sid, At: at}
}

func idxMark(kind, value string, at time.Time) revocation.Op {
	return revocation.Op{ID: idxID(), Kind: revocation.OpWatermark, Key: revocation.Key{Kind: kind, Value: value}, At: at}
}

// Identifiers of the depth-3 chain human → assistant → invoice-bot → ledger-tool used throughout.
const (
	idxIss       = "https://auth.example.net"
	idxIdP       = "https://idp.example.com"
	idxHuman     = "u-88213"
	idxAssistant = "spiffe://prod.example.net/tenant/acme/agent/assistant"
	idxInvoice   = "spiffe://prod.example.net/tenant/acme/agent/invoice-bot"
	idxLedger    = "spiffe://prod.example.net/tenant/acme/agent/ledger-tool"
	idxTenant    = "acme"
	idxClass     = "bp-ledger"
	idxKID       = "kT3x9VbQe0n2Yc8sJm4pR1uWq7ZfHd6LgA5oXvNyB0E"
)

// idxClaims returns the claims of the depth-3 token held by ledger-tool, issued at iat, at node sid with the
// given dlg path.
func idxClaims(jti string, iat time.Time, path ...string) revocation.Claims {
	return revocation.Claims{
		Issuer:        idxIss,
		Subject:       idxHuman,
		SubjectIssuer: idxIdP,
		Audience:      schemas.Audience{"https://tools.example.net/mcp/ledger"},
		ClientID:      idxLedger,
		IssuedAt:      iat.Unix(),
		ExpiresAt:     iat.Add(5 * time.Minute).Unix(),
		JTI:           jti,
		Act: &revocation.Actor{Subject: idxLedger, Act: &revocation.Actor{Subject: idxInvoice,
			Act: &revocation.Actor{Subject: idxAssistant}}},
		SID:        path[len(path)-1],
		Delegation: &revocation.Delegation{Depth: len(path) - 1, MaxDepth: 3, Path: path},
		Tenant:     idxTenant,
		AgentClass: idxClass,
	}
}

// idxToken is idxClaims as the index sees it, signed by idxKID.
func idxToken(jti string, iat time.Time, path ...string) revocation.Token {
	c := idxClaims(jti, iat, path...)
	return c.Token(idxKID)
}

// idxClosed reports whether ch is closed right now, without waiting.
func idxClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestIndexFailsClosedUntilReady(t *testing.T) {
	ix := revocation.NewIndex()
	clean := idxToken("t_clean", idxSec(0), "s_root", "s_A")
	if ix.Ready() {
		t.Fatal("a new index is ready")
	}
	if got := ix.Check(clean); got != revocation.ReasonNotReady {
		t.Fatalf("Check before SetReady = %q, want %q", got, revocation.ReasonNotReady)
	}
	// A token without anything to look up fails closed too.
	if got := ix.Check(revocation.Token{}); got != revocation.ReasonNotReady {
		t.Fatalf("Check(empty token) before SetReady = %q", got)
	}
	// Restoring (applying ops) does not make it ready.
	idxApply(t, ix, idxRevokeJTI("t_other", idxSec(0)))
	if ix.Ready() || ix.Check(clean) != revocation.ReasonNotReady {
		t.Fatal("applying an op made the index ready")
	}
	ix.SetReady()
	if !ix.Ready() {
		t.Fatal("Ready after SetReady = false")
	}
	if got := ix.Check(clean); got != "" {
		t.Fatalf("Check(clean) after SetReady = %q", got)
	}
	if got := ix.Check(idxToken("t_other", idxSec(0), "s_root")); got != revocation.ReasonToken {
		t.Fatalf("an op applied before SetReady is lost: Check = %q", got)
	}
	ix.SetReady() // twice: harmless
	if !ix.Ready() {
		t.Fatal("second SetReady unset ready")
	}
}

func TestIndexRevokeJTI(t *testing.T) {
	ix := idxReady(t)
	idxApply(t, ix, idxRevokeJTI("t_8b2", idxSec(0)))
	if got := ix.Check(idxToken("t_8b2", idxSec(-10), "s_root", "s_A")); got != revocation.ReasonToken {
		t.Fatalf("revoked jti: Check = %q, want %q", got, revocation.ReasonToken)
	}
	// The jti is rejected whatever its iat: revoke_jti is not a cutoff.
	if got := ix.Check(idxToken("t_8b2", idxSec(3600), "s_root", "s_A")); got != revocation.ReasonToken {
		t.Fatalf("revoked jti with a later iat: Check = %q", got)
	}
	for _, jti := range []string{"t_8b3", "T_8B2", "t_8b", "t_8b2 ", ""} {
		if got := ix.Check(idxToken(jti, idxSec(0), "s_root", "s_A")); got != "" {
			t.Errorf("jti %q: Check = %q, want not revoked", jti, got)
		}
	}
	// A jti is not a node id, nor a key value.
	if got := ix.Check(idxToken("t_x", idxSec(0), "s_root", "t_8b2")); got != "" {
		t.Errorf("a sid equal to a revoked jti: Check = %q", got)
	}
	if ix.Len() != 1 || ix.Applied() != 1 {
		t.Errorf("Len = %d, Applied = %d, want 1 and 1", ix.Len(), ix.Applied())
	}
}

func TestIndexRevokeNodeCascades(t *testing.T) {
	ix := idxReady(t)
	// Tree: s_root → s_A → s_B → s_C, and s_root → s_A2, s_A → s_B2.
	idxApply(t, ix, idxRevokeNode("s_A", idxSec(0)))
	for _, tc := range []struct {
		name string
		iat  int
		path []string
		want string
	}{
		{"the node itself", -5, []string{"s_root", "s_A"}, revocation.ReasonSession},
		{"a child", -5, []string{"s_root", "s_A", "s_B"}, revocation.ReasonSession},
		{"a grandchild", -5, []string{"s_root", "s_A", "s_B", "s_C"}, revocation.ReasonSession},
		{"another child", -5, []string{"s_root", "s_A", "s_B2"}, revocation.ReasonSession},
		// Minted after the revocation (the minting race): still rejected, by path, whatever its iat.
		{"a child minted after", 1, []string{"s_root", "s_A", "s_B3"}, revocation.ReasonSession},
		{"a grandchild minted an hour after", 3600, []string{"s_root", "s_A", "s_B", "s_new"}, revocation.ReasonSession},
		{"the parent", -5, []string{"s_root"}, ""},
		{"a sibling", -5, []string{"s_root", "s_A2"}, ""},
		{"a nephew", -5, []string{"s_root", "s_A2", "s_B"}, ""},
		{"a prefix of the sid", -5, []string{"s_root", "s_"}, ""},
		{"no path", -5, nil, ""},
	} {
		tok := idxToken("t_"+tc.name, idxSec(tc.iat), "s_x")
		tok.Path = tc.path
		if got := ix.Check(tok); got != tc.want {
			t.Errorf("%s %v: Check = %q, want %q", tc.name, tc.path, got, tc.want)
		}
	}
	// Revoking the root takes the whole tree.
	idxApply(t, ix, idxRevokeNode("s_root", idxSec(1)))
	for _, path := range [][]string{{"s_root"}, {"s_root", "s_A2"}, {"s_root", "s_A2", "s_B9"}} {
		if got := ix.Check(idxToken("t_y", idxSec(2), path...)); got != revocation.ReasonSession {
			t.Errorf("%v after revoking the root: Check = %q", path, got)
		}
	}
	// A token of another tree is untouched.
	if got := ix.Check(idxToken("t_z", idxSec(2), "s_root2", "s_X")); got != "" {
		t.Errorf("a token of another tree: Check = %q", got)
	}
}

// idxKeyCases are one watermark per key kind that the depth-3 token carries, the actor ones at every depth of
// its act chain.
var idxKeyCases = []struct {
	name string
	key  revocation.Key
}{
	{"sub (sub_iss|sub)", revocation.Key{Kind: revocation.KeySubject, Value: idxIdP + "|" + idxHuman}},
	{"client", revocation.Key{Kind: revocation.KeyClient, Value: idxLedger}},
	{"actor: the current one (client_id)", revocation.Key{Kind: revocation.KeyActor, Value: idxLedger}},
	{"actor: one hop back", revocation.Key{Kind: revocation.KeyActor, Value: idxInvoice}},
	{"actor: the first, deepest in act", revocation.Key{Kind: revocation.KeyActor, Value: idxAssistant}},
	{"tenant", revocation.Key{Kind: revocation.KeyTenant, Value: idxTenant}},
	{"class", revocation.Key{Kind: revocation.KeyClass, Value: idxClass}},
	{"kid", revocation.Key{Kind: revocation.KeySigningKey, Value: idxKID}},
}

func TestIndexWatermarkCutsAtIssuedAt(t *testing.T) {
	const cutoff = 100
	for _, kc := range idxKeyCases {
		t.Run(kc.name, func(t *testing.T) {
			ix := idxReady(t)
			idxApply(t, ix, idxMark(kc.key.Kind, kc.key.Value, idxSec(cutoff)))
			want := "revoked: " + kc.key.Kind
			for _, tc := range []struct {
				iat  int
				want string
			}{
				{cutoff - 600, want},
				{cutoff - 1, want},
				{cutoff, want},   // iat == T: rejected (iat ≤ T)
				{cutoff + 1, ""}, // the issuer's next second: accepted
				{cutoff + 600, ""},
			} {
				tok := idxToken(fmt.Sprintf("t_%d", tc.iat), idxSec(tc.iat), "s_root", "s_A", "s_B", "s_C")
				if got := ix.Check(tok); got != tc.want {
					t.Errorf("iat = T%+d: Check = %q, want %q", tc.iat-cutoff, got, tc.want)
				}
			}
		})
	}
}

func TestIndexWatermarkSubKeyFallsBackToIss(t *testing.T) {
	ix := idxReady(t)
	idxApply(t, ix, idxMark(revocation.KeySubject, idxIss+"|"+"spiffe://prod.example.net/agent/auto", idxSec(0)))
	// An autonomous token: sub is the agent itself and there is no sub_iss, so the key is iss|sub.
	c := revocation.Claims{Issuer: idxIss, Subject: "spiffe://prod.example.net/agent/auto",
		ClientID: "spiffe://prod.example.net/agent/auto", IssuedAt: idxSec(0).Unix(), JTI: "t_auto", SID: "s_w"}
	if got := ix.Check(c.Token("")); got != "revoked: "+revocation.KeySubject {
		t.Fatalf("Check = %q, want revoked: sub", got)
	}
}

func TestIndexWatermarkMatchesOnlyItsKind(t *testing.T) {
	ix := idxReady(t)
	for _, k := range []revocation.Key{
		{Kind: revocation.KeyClient, Value: idxAssistant},             // a prior actor is not the client
		{Kind: revocation.KeyClient, Value: idxTenant},                // a value of another kind
		{Kind: revocation.KeySubject, Value: idxHuman},                // sub without its issuer
		{Kind: revocation.KeySubject, Value: idxIss + "|" + idxHuman}, // iss instead of sub_iss
		{Kind: revocation.KeyTenant, Value: idxClass},
		{Kind: revocation.KeyTenant, Value: "acme2"},
		{Kind: revocation.KeyClass, Value: idxTenant},
		{Kind: revocation.KeySigningKey, Value: idxKID + "x"},
		{Kind: revocation.KeyActor, Value: idxHuman}, // the principal is not an actor
		{Kind: revocation.KeyActor, Value: idxAssistant + "/"},
	} {
		idxApply(t, ix, idxMark(k.Kind, k.Value, idxSec(1000)))
	}
	if got := ix.Check(idxToken("t_1", idxSec(0), "s_root", "s_A", "s_B", "s_C")); got != "" {
		t.Fatalf("Check = %q, want not revoked: no watermark is on one of the token's keys", got)
	}
}

func TestIndexLatestCutoffWinsInAnyOrder(t *testing.T) {
	const t1, t2 = 100, 200
	for _, kc := range idxKeyCases {
		for _, order := range [][]int{{t2, t1}, {t1, t2}, {t2, t1, t2, t1}} {
			ix := idxReady(t)
			for _, at := range order {
				idxApply(t, ix, idxMark(kc.key.Kind, kc.key.Value, idxSec(at)))
			}
			want := "revoked: " + kc.key.Kind
			for _, tc := range []struct {
				iat  int
				want string
			}{{t1, want}, {t1 + 1, want}, {t2, want}, {t2 + 1, ""}} {
				if got := ix.Check(idxToken("t", idxSec(tc.iat), "s_r")); got != tc.want {
					t.Errorf("%s, cutoffs applied in order %v, iat %d: Check = %q, want %q", kc.name, order, tc.iat, got, tc.want)
				}
			}
			if ix.Len() != 1 {
				t.Errorf("%s, order %v: Len = %d, want 1 (one cutoff per key)", kc.name, order, ix.Len())
			}
		}
	}
}

// idxProbe is a set of tokens whose verdicts describe an index's state.
func idxProbe() []revocation.Token {
	var toks []revocation.Token
	for i, iat := range []int{-1, 0, 1, 50, 51, 100, 101} {
		toks = append(toks,
			idxToken(fmt.Sprintf("t_%d", i), idxSec(iat), "s_root", "s_A", "s_B"),
			idxToken("t_j", idxSec(iat), "s_root2"),
			idxToken(fmt.Sprintf("t_n%d", i), idxSec(iat), "s_root2", "s_N", "s_M"),
		)
	}
	return toks
}

func idxVerdicts(ix *revocation.Index, toks []revocation.Token) []string {
	out := make([]string, len(toks))
	for i, tok := range toks {
		out[i] = ix.Check(tok)
	}
	return out
}

func TestIndexRepeatsAreIdempotent(t *testing.T) {
	ops := []revocation.Op{
		idxRevokeJTI("t_j", idxSec(0)),
		idxRevokeNode("s_N", idxSec(0)),
		idxMark(revocation.KeyActor, idxAssistant, idxSec(50)),
		idxMark(revocation.KeyTenant, idxTenant, idxSec(0)),
	}
	ix := idxReady(t)
	for _, op := range ops {
		idxApply(t, ix, op)
	}
	probe := idxProbe()
	want := idxVerdicts(ix, probe)
	wantLen := ix.Len()
	if wantLen != len(ops) {
		t.Fatalf("Len = %d, want %d", wantLen, len(ops))
	}
	// The same ops again (a redelivery), then again under new ids (the same decision reached twice), in reverse.
	for _, op := range ops {
		idxApply(t, ix, op)
	}
	for _, op := range slices.Backward(ops) {
		op.ID = idxID()
		idxApply(t, ix, op)
	}
	if got := idxVerdicts(ix, probe); !slices.Equal(got, want) {
		t.Fatalf("verdicts changed by repeats:\n got %q\nwant %q", got, want)
	}
	if ix.Len() != wantLen {
		t.Fatalf("Len after repeats = %d, want %d", ix.Len(), wantLen)
	}
}

func TestIndexDisableAndEnableChangeNothing(t *testing.T) {
	ix := idxReady(t)
	probe := idxProbe()
	var ops []revocation.Op
	for _, kc := range idxKeyCases {
		for _, kind := range []string{revocation.OpDisable, revocation.OpEnable} {
			ops = append(ops, revocation.Op{ID: idxID(), Kind: kind, Key: kc.key, At: idxSec(1000)})
		}
	}
	ops = append(ops, revocation.Op{ID: idxID(), Kind: revocation.OpDisable, JTI: "t_j", SID: "s_N", At: idxSec(1000)})
	for _, op := range ops {
		idxApply(t, ix, op)
	}
	if ix.Len() != 0 || ix.Applied() != 0 {
		t.Fatalf("after disable/enable: Len = %d, Applied = %d, want 0 and 0", ix.Len(), ix.Applied())
	}
	for i, v := range idxVerdicts(ix, probe) {
		if v != "" {
			t.Errorf("token %d revoked by disable/enable: %q", i, v)
		}
	}
	// enable does not lift a watermark (monotonic state).
	idxApply(t, ix, idxMark(revocation.KeyTenant, idxTenant, idxSec(100)))
	want := idxVerdicts(ix, probe)
	idxApply(t, ix, revocation.Op{ID: idxID(), Kind: revocation.OpEnable,
		Key: revocation.Key{Kind: revocation.KeyTenant, Value: idxTenant}, At: idxSec(200)})
	if got := idxVerdicts(ix, probe); !slices.Equal(got, want) {
		t.Fatalf("enable changed verdicts:\n got %q\nwant %q", got, want)
	}
}

func TestIndexRefusesInvalidOps(t *testing.T) {
	at := idxSec(0)
	for _, tc := range []struct {
		name string
		op   revocation.Op
	}{
		{"no op_id", revocation.Op{Kind: revocation.OpRevokeJTI, JTI: "t_j", At: at}},
		{"no time", revocation.Op{ID: "o", Kind: revocation.OpRevokeJTI, JTI: "t_j"}},
		{"revoke_jti without jti", revocation.Op{ID: "o", Kind: revocation.OpRevokeJTI, SID: "s_N", At: at}},
		{"revoke_node without sid", revocation.Op{ID: "o", Kind: revocation.OpRevokeNode, JTI: "t_j", At: at}},
		{"watermark without key", revocation.Op{ID: "o", Kind: revocation.OpWatermark, At: at}},
		{"watermark of an unknown key kind", revocation.Op{ID: "o", Kind: revocation.OpWatermark,
			Key: revocation.Key{Kind: "blueprint", Value: idxClass}, At: at}},
		{"watermark of key kind iss", revocation.Op{ID: "o", Kind: revocation.OpWatermark,
			Key: revocation.Key{Kind: "iss", Value: idxIss}, At: at}},
		{"watermark without value", revocation.Op{ID: "o", Kind: revocation.OpWatermark,
			Key: revocation.Key{Kind: revocation.KeyTenant}, At: at}},
		{"watermark without time", revocation.Op{ID: "o", Kind: revocation.OpWatermark,
			Key: revocation.Key{Kind: revocation.KeyTenant, Value: idxTenant}}},
		{"unknown kind", revocation.Op{ID: "o", Kind: "revoke_everything", JTI: "t_j", SID: "s_N", At: at}},
		{"no kind", revocation.Op{ID: "o", JTI: "t_j", At: at}},
		{"kind in upper case", revocation.Op{ID: "o", Kind: "REVOKE_JTI", JTI: "t_j", At: at}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := idxReady(t)
			probe := idxProbe()
			if err := tc.op.Validate(); !errors.Is(err, revocation.ErrInvalidOp) {
				t.Errorf("Validate = %v, want ErrInvalidOp", err)
			}
			if err := ix.Apply(tc.op); !errors.Is(err, revocation.ErrInvalidOp) {
				t.Fatalf("Apply = %v, want ErrInvalidOp", err)
			}
			if ix.Len() != 0 || ix.Applied() != 0 {
				t.Errorf("Len = %d, Applied = %d after a refused op", ix.Len(), ix.Applied())
			}
			for i, v := range idxVerdicts(ix, probe) {
				if v != "" {
					t.Errorf("token %d revoked by a refused op: %q", i, v)
				}
			}
		})
	}
}

func TestIndexSweepRemovesExactlyTheExpired(t *testing.T) {
	ix := idxReady(t)
	short, long := idxSec(60), idxSec(600)
	with := func(op revocation.Op, exp time.Time) revocation.Op { op.ExpiresAt = exp; return op }
	idxApply(t, ix, with(idxRevokeJTI("t_short", idxSec(0)), short))
	idxApply(t, ix, with(idxRevokeJTI("t_long", idxSec(0)), long))
	idxApply(t, ix, idxRevokeJTI("t_default", idxSec(0))) // expires At + DefaultRetention
	idxApply(t, ix, with(idxRevokeNode("s_short", idxSec(0)), short))
	idxApply(t, ix, with(idxRevokeNode("s_long", idxSec(0)), long))
	idxApply(t, ix, with(idxMark(revocation.KeyTenant, idxTenant, idxSec(10)), short))
	idxApply(t, ix, with(idxMark(revocation.KeyClass, idxClass, idxSec(10)), long))
	// A repeat with a later expiry extends; one with an earlier expiry does not shorten.
	idxApply(t, ix, with(idxRevokeJTI("t_extended", idxSec(0)), short))
	idxApply(t, ix, with(idxRevokeJTI("t_extended", idxSec(0)), long))
	idxApply(t, ix, with(idxRevokeJTI("t_kept", idxSec(0)), long))
	idxApply(t, ix, with(idxRevokeJTI("t_kept", idxSec(0)), short))

	verdict := func(jti, sid string) string {
		tok := idxToken(jti, idxSec(5), "s_root", sid)
		return ix.Check(tok)
	}
	check := func(when string, want map[[2]string]string) {
		t.Helper()
		for js, w := range want {
			if got := verdict(js[0], js[1]); got != w {
				t.Errorf("%s: jti %s sid %s: Check = %q, want %q", when, js[0], js[1], got, w)
			}
		}
	}
	const n = 9
	if ix.Len() != n {
		t.Fatalf("Len = %d, want %d", ix.Len(), n)
	}
	if got := ix.Sweep(idxSec(0)); got != 0 || ix.Len() != n {
		t.Fatalf("Sweep before anything expired removed %d, Len %d", got, ix.Len())
	}
	// An entry expiring exactly now is kept: Sweep removes what expired before now.
	if got := ix.Sweep(short); got != 0 || ix.Len() != n {
		t.Fatalf("Sweep(at the short expiry) removed %d, Len %d", got, ix.Len())
	}
	before := map[[2]string]string{
		{"t_short", "s_x"}: revocation.ReasonToken, {"t_x", "s_short"}: revocation.ReasonSession,
		{"t_x", "s_x"}: "revoked: " + revocation.KeyTenant,
	}
	check("before the sweep", before)

	if got := ix.Sweep(short.Add(time.Second)); got != 3 {
		t.Fatalf("Sweep(after the short expiry) removed %d, want 3", got)
	}
	if ix.Len() != n-3 {
		t.Fatalf("Len = %d, want %d", ix.Len(), n-3)
	}
	// Swept entries no longer reject; the others still do. The tenant cutoff is gone, the class one is not.
	check("after the first sweep", map[[2]string]string{
		{"t_short", "s_y"}:    "revoked: " + revocation.KeyClass,
		{"t_long", "s_y"}:     revocation.ReasonToken,
		{"t_extended", "s_y"}: revocation.ReasonToken,
		{"t_kept", "s_y"}:     revocation.ReasonToken,
		{"t_y", "s_short"}:    "revoked: " + revocation.KeyClass,
		{"t_y", "s_long"}:     revocation.ReasonSession,
	})
	c := idxClaims("t_short", idxSec(5), "s_root", "s_short")
	c.AgentClass = ""
	if got := ix.Check(c.Token(idxKID)); got != "" {
		t.Errorf("a token only swept entries rejected: Check = %q", got)
	}
	if got := ix.Sweep(short.Add(time.Second)); got != 0 {
		t.Errorf("a second sweep at the same time removed %d", got)
	}

	// At + DefaultRetention is the default expiry.
	def := idxSec(0).Add(revocation.DefaultRetention)
	if got := ix.Sweep(def); got != 5 { // t_long, t_extended, t_kept, s_long, class (all at 600 s)
		t.Fatalf("Sweep(At+DefaultRetention) removed %d, want 5", got)
	}
	if ix.Len() != 1 || ix.Check(idxToken("t_default", idxSec(5), "s_z")) != revocation.ReasonToken {
		t.Fatalf("t_default should survive until At+DefaultRetention: Len %d", ix.Len())
	}
	if got := ix.Sweep(def.Add(time.Second)); got != 1 || ix.Len() != 0 {
		t.Fatalf("last sweep removed %d, Len %d", got, ix.Len())
	}
	if got := ix.Check(idxToken("t_default", idxSec(5), "s_z")); got != "" {
		t.Fatalf("swept t_default: Check = %q", got)
	}
	// A swept entry can be revoked again.
	idxApply(t, ix, idxRevokeJTI("t_short", idxSec(700)))
	if ix.Len() != 1 || ix.Check(idxToken("t_short", idxSec(5), "s_z")) != revocation.ReasonToken {
		t.Fatal("revoking a swept jti again did not take")
	}
}

func TestIndexRunSweeperStops(t *testing.T) {
	ix := idxReady(t)
	op := idxRevokeJTI("t_old", time.Now().Add(-time.Hour))
	op.ExpiresAt = time.Now().Add(-time.Minute)
	idxApply(t, ix, op)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { ix.RunSweeper(stop, time.Millisecond); close(done) }()
	for ix.Len() != 0 { // bounded by the sweeper: the entry expired a minute ago
		runtime.Gosched()
	}
	close(stop)
	<-done
}

func TestIndexWatch(t *testing.T) {
	tok := idxToken("t_w", idxSec(10), "s_root", "s_A", "s_B")
	ops := map[string]revocation.Op{
		"revoke_jti":       idxRevokeJTI("t_w", idxSec(20)),
		"revoke_node":      idxRevokeNode("s_A", idxSec(20)),
		"watermark actor":  idxMark(revocation.KeyActor, idxAssistant, idxSec(10)),
		"watermark tenant": idxMark(revocation.KeyTenant, idxTenant, idxSec(20)),
	}
	for name, op := range ops {
		t.Run("already revoked: "+name, func(t *testing.T) {
			ix := idxReady(t)
			idxApply(t, ix, op)
			ch, stop := ix.Watch(tok)
			defer stop()
			if !idxClosed(ch) {
				t.Fatal("Watch of a revoked token returned an open channel")
			}
		})
		t.Run("revoked later: "+name, func(t *testing.T) {
			ix := idxReady(t)
			ch, stop := ix.Watch(tok)
			defer stop()
			other, stopOther := ix.Watch(idxToken("t_other", idxSec(30), "s_root2", "s_Q"))
			defer stopOther()
			if idxClosed(ch) {
				t.Fatal("channel closed before any op")
			}
			// Ops that do not reach the token leave it open.
			idxApply(t, ix, idxRevokeJTI("t_w2", idxSec(20)))
			idxApply(t, ix, idxRevokeNode("s_A2", idxSec(20)))
			idxApply(t, ix, idxMark(revocation.KeyActor, idxAssistant, idxSec(9))) // before its iat
			if idxClosed(ch) {
				t.Fatal("channel closed by ops that do not reach the token")
			}
			idxApply(t, ix, op)
			// Apply notifies before it returns.
			if !idxClosed(ch) {
				t.Fatal("channel still open after the op that revokes the token")
			}
			if idxClosed(other) {
				t.Fatal("another token's channel was closed")
			}
			// Further ops and a late stop are harmless.
			idxApply(t, ix, op)
			stop()
			stop()
		})
	}
	t.Run("stop", func(t *testing.T) {
		ix := idxReady(t)
		ch, stop := ix.Watch(tok)
		stop()
		idxApply(t, ix, idxRevokeJTI("t_w", idxSec(20)))
		if idxClosed(ch) {
			t.Fatal("a stopped watch was closed")
		}
		stop()
	})
	t.Run("many watchers of one token", func(t *testing.T) {
		ix := idxReady(t)
		var chans []<-chan struct{}
		for range 50 {
			ch, stop := ix.Watch(tok)
			defer stop()
			chans = append(chans, ch)
		}
		idxApply(t, ix, idxRevokeNode("s_B", idxSec(20)))
		for i, ch := range chans {
			if !idxClosed(ch) {
				t.Fatalf("watcher %d still open", i)
			}
		}
	})
}

// TestIndexChecksAfterApplySeeIt: Check is lock-free, so it must still see every op whose Apply returned before
// the Check began. N goroutines check one token in a loop; the main goroutine applies an op that revokes it and
// then raises a flag. A check that read the flag before it started began after Apply returned: it must say
// revoked. Checks that raced with Apply may say either. No timing is asserted; each loop ends after a fixed
// number of checks that saw the flag.
func TestIndexChecksAfterApplySeeIt(t *testing.T) {
	const (
		workers  = 8
		warmup   = 200  // checks per worker before the op is applied
		afterOps = 2000 // checks per worker after the flag
	)
	tok := idxToken("t_c", idxSec(10), "s_root", "s_A", "s_B", "s_C")
	for name, op := range map[string]revocation.Op{
		"revoke_jti":      idxRevokeJTI("t_c", idxSec(20)),
		"revoke_node":     idxRevokeNode("s_B", idxSec(20)),
		"watermark actor": idxMark(revocation.KeyActor, idxInvoice, idxSec(10)),
		"watermark kid":   idxMark(revocation.KeySigningKey, idxKID, idxSec(20)),
	} {
		t.Run(name, func(t *testing.T) {
			ix := idxReady(t)
			// Noise, so the op lands in a populated index.
			for i := range 1000 {
				idxApply(t, ix, idxRevokeJTI(fmt.Sprintf("t_noise%d", i), idxSec(0)))
				idxApply(t, ix, idxRevokeNode(fmt.Sprintf("s_noise%d", i), idxSec(0)))
			}
			var (
				applied  atomic.Bool
				warm     atomic.Int64
				missed   atomic.Int64
				raced    atomic.Int64
				notReady atomic.Int64
				wg       sync.WaitGroup
			)
			for range workers {
				wg.Go(func() {
					for after, i := 0, 0; after < afterOps; i++ {
						seen := applied.Load() // read before the check starts
						got := ix.Check(tok)
						switch {
						case seen && got == "":
							missed.Add(1)
						case got == revocation.ReasonNotReady:
							notReady.Add(1)
						case !seen && got != "":
							raced.Add(1) // revoked while Apply was running: fine
						}
						if seen {
							after++
						}
						if i == warmup {
							warm.Add(1)
						}
					}
				})
			}
			for warm.Load() < workers { // every worker is checking: the op lands in the middle of their loops
				runtime.Gosched()
			}
			idxApply(t, ix, op)
			applied.Store(true)
			wg.Wait()
			if missed.Load() != 0 || notReady.Load() != 0 {
				t.Fatalf("%d checks that began after Apply returned said not revoked (%d not ready)", missed.Load(), notReady.Load())
			}
			t.Logf("%d checks raced with Apply and already saw the op", raced.Load())
		})
	}
}

// TestIndexSweepDoesNotLoseAConcurrentRaise reproduces a lost update between Sweep and Apply. Sweep reads an
// entry's expiry in Range and deletes the entry later with LoadAndDelete; an Apply of the same key in between
// finds the old entry with LoadOrStore and raises its cutoff and expiry, and Sweep then deletes it. The op
// Apply accepted is lost: a later watermark on a key (or a repeated revoke_jti or revoke_node) whose earlier
// entry was due for sweeping stops rejecting, and the index fails open.
//
// It is probabilistic (the window is a few instructions): before the fix about 2 % of the rounds lost the op, so
// the default 2,000 rounds catch a regression; REVOCATION_REPRO=1 runs 20,000 (about 15 s).
func TestIndexSweepDoesNotLoseAConcurrentRaise(t *testing.T) {
	rounds := 2000
	if os.Getenv("REVOCATION_REPRO") != "" {
		rounds = 20000
	}
	key := revocation.Key{Kind: revocation.KeyActor, Value: idxAssistant}
	tok := idxToken("t_s", idxSec(150), "s_root")
	for r := range rounds {
		ix := idxReady(t)
		// An old cutoff at T1=100, expired at 200.
		old := idxMark(key.Kind, key.Value, idxSec(100))
		old.ExpiresAt = idxSec(200)
		idxApply(t, ix, old)
		// A new cutoff at T2=160 that lives until 10,000: it must reject tok (iat 150) whatever Sweep(300) does.
		fresh := idxMark(key.Kind, key.Value, idxSec(160))
		fresh.ExpiresAt = idxSec(10000)
		var go1 atomic.Bool
		done := make(chan struct{})
		go func() {
			go1.Store(true)
			ix.Sweep(idxSec(300))
			close(done)
		}()
		for !go1.Load() {
		}
		for range r % 64 { // vary the alignment of the two goroutines
			runtime.Gosched()
		}
		idxApply(t, ix, fresh)
		<-done
		if got := ix.Check(tok); got == "" {
			t.Fatalf("round %d: watermark(actor, T2) applied concurrently with Sweep was lost: Len %d, Check = %q",
				r, ix.Len(), got)
		}
	}
}

// TestIndexWatchAcrossRestore: while the index is not ready, Check answers ReasonNotReady for every token, which
// is no revocation: ops applied during the restore must not close unrelated watches, and SetReady closes the
// watches of tokens the restore revoked.
func TestIndexWatchAcrossRestore(t *testing.T) {
	ix := revocation.NewIndex()
	clean, stopClean := ix.Watch(idxToken("t_w", idxSec(10), "s_root"))
	defer stopClean()
	doomed, stopDoomed := ix.Watch(idxToken("t_d", idxSec(10), "s_root2", "s_D"))
	defer stopDoomed()
	if idxClosed(clean) || idxClosed(doomed) {
		t.Fatal("Watch closed at once on a not-ready index")
	}
	idxApply(t, ix, idxRevokeJTI("t_unrelated", idxSec(20)))
	idxApply(t, ix, idxRevokeNode("s_D", idxSec(20)))
	if idxClosed(clean) {
		t.Fatal("an unrelated op applied before SetReady closed a watch")
	}
	ix.SetReady()
	if !idxClosed(doomed) {
		t.Fatal("SetReady left open the watch of a token the restore revoked")
	}
	if idxClosed(clean) {
		t.Fatal("SetReady closed the watch of a clean token")
	}
}

// idxIssuerJSON is a depth-3 access token as the issuer writes it (spec/agent-auth.md §2.5): human u-88213 of an
// external IdP → assistant → invoice-bot → ledger-tool, with members the index does not read.
const idxIssuerJSON = `{
  "iss": "https://auth.example.net",
  "sub": "u-88213",
  "sub_iss": "https://idp.example.com",
  "aud": "https://tools.example.net/mcp/ledger",
  "client_id": "spiffe://prod.example.net/tenant/acme/agent/ledger-tool",
  "act": {"sub": "spiffe://prod.example.net/tenant/acme/agent/ledger-tool",
          "act": {"sub": "spiffe://prod.example.net/tenant/acme/agent/invoice-bot",
                  "act": {"sub": "spiffe://prod.example.net/tenant/acme/agent/assistant"}}},
  "may_act": {"sub": "spiffe://prod.example.net/tenant/acme/agent/auditor"},
  "scope": "ledger.read  ledger.write",
  "authorization_details": [{"type": "tool_invocation", "locations": ["https://tools.example.net/mcp/ledger"], "actions": ["post"]}],
  "sid": "s_C",
  "dlg": {"depth": 3, "max_depth": 3, "path": ["s_root", "s_A", "s_B", "s_C"], "parent_jti": "t_3c1"},
  "tenant": "acme",
  "agent_class": "bp-ledger",
  "cnf": {"jkt": "kT3x9VbQe0n2Yc8sJm4pR1uWq7ZfHd6LgA5oXvNyB0E"},
  "acr": "phr", "amr": ["hwk"], "auth_time": 1767225000,
  "iat": 1767225600, "exp": 1767225900, "jti": "t_8b2"
}`

func TestClaimsTokenOfAnIssuerToken(t *testing.T) {
	var c revocation.Claims
	if err := json.Unmarshal([]byte(idxIssuerJSON), &c); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Audience, schemas.Audience{"https://tools.example.net/mcp/ledger"}) {
		t.Errorf("aud = %q", c.Audience)
	}
	if !slices.Equal(c.Scopes(), []string{"ledger.read", "ledger.write"}) {
		t.Errorf("Scopes = %q", c.Scopes())
	}
	if c.Cnf == nil || c.Cnf.JKT != idxKID || c.Delegation == nil || c.Delegation.Depth != 3 || c.Delegation.MaxDepth != 3 {
		t.Errorf("cnf %+v, dlg %+v", c.Cnf, c.Delegation)
	}
	if got, want := c.Actors(), []string{idxLedger, idxInvoice, idxAssistant}; !slices.Equal(got, want) {
		t.Errorf("Actors = %q, want %q", got, want)
	}
	tok := c.Token("kid-1")
	if tok.JTI != "t_8b2" || !tok.IssuedAt.Equal(time.Unix(1767225600, 0)) {
		t.Errorf("jti %q, iat %v", tok.JTI, tok.IssuedAt)
	}
	if want := []string{"s_root", "s_A", "s_B", "s_C"}; !slices.Equal(tok.Path, want) {
		t.Errorf("Path = %q, want %q", tok.Path, want)
	}
	want := []revocation.Key{
		{Kind: revocation.KeySubject, Value: "https://idp.example.com|u-88213"},
		{Kind: revocation.KeyClient, Value: idxLedger},
		{Kind: revocation.KeyActor, Value: idxLedger}, // the client is an actor; the outermost act.sub is not repeated
		{Kind: revocation.KeyActor, Value: idxInvoice},
		{Kind: revocation.KeyActor, Value: idxAssistant},
		{Kind: revocation.KeyTenant, Value: "acme"},
		{Kind: revocation.KeyClass, Value: "bp-ledger"},
		{Kind: revocation.KeySigningKey, Value: "kid-1"},
	}
	if !slices.Equal(tok.Keys, want) {
		t.Errorf("Keys =\n %q\nwant\n %q", tok.Keys, want)
	}
	// may_act names a party that may act next, not one that acted: it is no actor key.
	for _, k := range tok.Keys {
		if k.Value == "spiffe://prod.example.net/tenant/acme/agent/auditor" {
			t.Errorf("may_act became a key: %+v", k)
		}
	}

	// End to end: the assistant's kill switch, issued at the token's iat, rejects it.
	ix := idxReady(t)
	idxApply(t, ix, idxMark(revocation.KeyActor, idxAssistant, time.Unix(1767225600, 0)))
	if got := ix.Check(tok); got != "revoked: actor" {
		t.Errorf("Check = %q, want revoked: actor", got)
	}
}

func TestClaimsAudienceStringOrArray(t *testing.T) {
	for _, tc := range []struct {
		aud  string
		want schemas.Audience
		err  bool
	}{
		{`"https://a.example"`, schemas.Audience{"https://a.example"}, false},
		{`["https://a.example","spiffe://b.example/agent"]`, schemas.Audience{"https://a.example", "spiffe://b.example/agent"}, false},
		{`["https://a.example"]`, schemas.Audience{"https://a.example"}, false},
		{`[]`, schemas.Audience{}, false},
		{`42`, nil, true},
		{`{"a":1}`, nil, true},
		{`[1]`, nil, true},
	} {
		var c revocation.Claims
		err := json.Unmarshal([]byte(`{"aud":`+tc.aud+`}`), &c)
		if (err != nil) != tc.err {
			t.Errorf("aud %s: err = %v", tc.aud, err)
			continue
		}
		if !tc.err && !slices.Equal(c.Audience, tc.want) {
			t.Errorf("aud %s: %q, want %q", tc.aud, c.Audience, tc.want)
		}
	}
}

func TestClaimsTokenOfShallowTokens(t *testing.T) {
	// Autonomous (client_credentials): sub = client_id, no act, no sub_iss, sid but no dlg, no tenant or class.
	var c revocation.Claims
	err := json.Unmarshal([]byte(`{"iss":"https://auth.example.net","sub":"spiffe://p/agent/a","aud":["r1","r2"],
		"client_id":"spiffe://p/agent/a","iat":100,"exp":700,"jti":"t_1","sid":"s_w"}`), &c)
	if err != nil {
		t.Fatal(err)
	}
	tok := c.Token("")
	if !slices.Equal(tok.Path, []string{"s_w"}) {
		t.Errorf("Path without dlg = %q, want [s_w]", tok.Path)
	}
	want := []revocation.Key{
		{Kind: revocation.KeySubject, Value: "https://auth.example.net|spiffe://p/agent/a"},
		{Kind: revocation.KeyClient, Value: "spiffe://p/agent/a"},
		{Kind: revocation.KeyActor, Value: "spiffe://p/agent/a"},
	}
	if !slices.Equal(tok.Keys, want) {
		t.Errorf("Keys = %q, want %q (no tenant, class or kid keys when absent)", tok.Keys, want)
	}
	// An SSF management token: no sid, no dlg — no path.
	c.SID = ""
	if tok := c.Token("k"); tok.Path != nil {
		t.Errorf("Path = %q, want none", tok.Path)
	}
	// dlg.path wins over sid.
	c.SID = "s_B"
	c.Delegation = &revocation.Delegation{Depth: 1, Path: []string{"s_A", "s_B"}}
	if tok := c.Token("k"); !slices.Equal(tok.Path, []string{"s_A", "s_B"}) {
		t.Errorf("Path = %q", tok.Path)
	}
	// A depth-1 token whose current actor differs from the client (re-audience) has both as actors.
	c.Act = &revocation.Actor{Subject: "spiffe://p/agent/b"}
	var actors []string
	for _, k := range c.Token("k").Keys {
		if k.Kind == revocation.KeyActor {
			actors = append(actors, k.Value)
		}
	}
	if !slices.Equal(actors, []string{"spiffe://p/agent/a", "spiffe://p/agent/b"}) {
		t.Errorf("actor keys = %q", actors)
	}
}

// TestIndexHeartbeat: heartbeats revoke nothing and are timed on arrival, whatever time the publisher claims.
func TestIndexHeartbeat(t *testing.T) {
	ix := idxReady(t)
	if !ix.LastHeartbeat().IsZero() {
		t.Fatal("a heartbeat before any was applied")
	}
	before := time.Now()
	for _, at := range []time.Time{idxSec(20), time.Now().Add(time.Hour)} { // an old clock, and one far ahead
		idxApply(t, ix, revocation.Op{ID: idxID(), Kind: revocation.OpHeartbeat, At: at})
	}
	if got := ix.LastHeartbeat(); got.Before(before) || got.After(time.Now()) {
		t.Fatalf("LastHeartbeat = %v, not the arrival time", got)
	}
	if ix.Len() != 0 || ix.Applied() != 0 {
		t.Fatalf("a heartbeat changed the index: Len %d, Applied %d", ix.Len(), ix.Applied())
	}
}

// TestOnlyRevokingOpsRevoke: the ops that can refuse a token here are the ones the apply-lag metric measures.
func TestOnlyRevokingOpsRevoke(t *testing.T) {
	for kind, want := range map[string]bool{revocation.OpRevokeJTI: true, revocation.OpRevokeNode: true,
		revocation.OpWatermark: true, revocation.OpDisable: false, revocation.OpEnable: false, revocation.OpHeartbeat: false} {
		if got := (revocation.Op{Kind: kind}).Revokes(); got != want {
			t.Errorf("%s: Revokes() = %v", kind, got)
		}
	}
}
