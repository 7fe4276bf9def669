package issuer_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/schemas"
)

// TestDelegationChainCarriesActAndDlg: human → A → B → C, each hop one exchange; the tokens carry the human as
// sub, the act chain with the current actor outermost, and dlg with the node path root → self.
func TestDelegationChainCarriesActAndDlg(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	root, rootSID := e.session()
	rc := claims(t, root)
	if rc.Subject != "u-88213" || rc.SubjectIssuer != idp || rc.MayAct == nil || rc.MayAct.Subject != agentA || rc.Act != nil {
		t.Fatalf("root token claims = %+v", rc)
	}
	tA := e.mustExchange(agentA, root, agentB, "invoices.read invoices.write")
	tB := e.mustExchange(agentB, tA, agentC, "invoices.read")
	tC := e.mustExchange(agentC, tB, tools, "invoices.read")

	cA, cB, cC := claims(t, tA), claims(t, tB), claims(t, tC)
	for _, c := range []issuer.Claims{cA, cB, cC} {
		if c.Subject != "u-88213" || c.SubjectIssuer != idp || c.Tenant != "acme" || c.ACR != "phr" {
			t.Fatalf("claims lost the root principal: %+v", c)
		}
	}
	if got := cC.Actors(); !slices.Equal(got, []string{agentC, agentB, agentA}) {
		t.Fatalf("C's act chain = %v", got)
	}
	if cC.ClientID != agentC || cC.Audience[0] != tools || cC.Scope != "invoices.read" {
		t.Fatalf("C's token = %+v", cC)
	}
	if d := cC.Delegation; d.Depth != 3 || d.MaxDepth != 3 || len(d.Path) != 4 || d.Path[0] != rootSID ||
		d.Path[3] != cC.SID || d.ParentJTI != cB.JTI {
		t.Fatalf("C's dlg = %+v", d)
	}
	if !slices.Equal(cB.Delegation.Path, cC.Delegation.Path[:3]) || !slices.Equal(cA.Delegation.Path, cB.Delegation.Path[:2]) {
		t.Fatalf("paths do not nest: %v %v %v", cA.Delegation.Path, cB.Delegation.Path, cC.Delegation.Path)
	}
	if cB.ExpiresAt > cA.ExpiresAt || cC.ExpiresAt > cB.ExpiresAt {
		t.Fatalf("a child outlives its parent: %d %d %d", cA.ExpiresAt, cB.ExpiresAt, cC.ExpiresAt)
	}
	if ttl := cC.ExpiresAt - cC.IssuedAt; ttl > int64((5 * time.Minute).Seconds()) {
		t.Fatalf("a depth-3 token lives %ds, more than the delegated TTL", ttl)
	}

	// Revoking A's node makes B's and C's tokens inactive (and A's), not the human's root token.
	status, out := e.adminJSON(http.MethodPost, issuer.PathRevocations, issuer.RevocationRequest{SID: cA.SID, Reason: "guardrail"})
	if status != http.StatusOK {
		t.Fatalf("revoke: %d %v", status, out)
	}
	for name, tok := range map[string]string{"A": tA, "B": tB, "C": tC} {
		if got := e.introspect(rs, tok); got["active"] != false {
			t.Fatalf("%s's token is still active after its ancestor was revoked: %v", name, got)
		}
	}
	if got := e.introspect(rs, root); got["active"] != true || got["sid"] != rootSID {
		t.Fatalf("the root token was revoked with its child: %v", got)
	}
	// B can no longer mint below the revoked node.
	if status, out := e.exchange(agentC, tB, tools, "invoices.read"); status != http.StatusBadRequest || out["error"] != issuer.CodeInvalidGrant {
		t.Fatalf("exchange below a revoked node: %d %v", status, out)
	}
	// Every revoked node became a session-revoked event naming its session.
	if _, err := e.is.FlushOutbox(t.Context()); err != nil {
		t.Fatal(err)
	}
	var sessions []string
	for _, ev := range e.sink.all() {
		if ev.Payload.EventType() != schemas.EventSessionRevoked {
			t.Fatalf("event %s", ev.Payload.EventType())
		}
		if s, ok := ev.Subject.Member(schemas.RoleSession); ok {
			sessions = append(sessions, s.Get("id"))
		}
	}
	if !slices.Equal(sessions, []string{cA.SID, cB.SID, cC.SID}) {
		t.Fatalf("session-revoked events for %v, want A's, B's and C's nodes", sessions)
	}
}

// TestTokenExchangeValidation: each rule of spec/agent-auth.md §2.4 fails with its RFC 6749/8693 error.
func TestTokenExchangeValidation(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	e.register(issuer.ClientRequest{ID: "spiffe://example.org/tenant/acme/agent/stranger", Scopes: []string{"invoices.read"},
		Resources: []string{tools}, GrantTypes: []string{issuer.GrantTokenExchange}})
	e.register(issuer.ClientRequest{ID: "spiffe://example.org/tenant/acme/agent/cc-only", Scopes: []string{"invoices.read"},
		Resources: []string{tools}, GrantTypes: []string{issuer.GrantClientCredentials}})
	// An owner whose tokens the stranger may not exchange: it lists no actors.
	const stranger, owner = "spiffe://example.org/tenant/acme/agent/stranger", "spiffe://example.org/tenant/acme/agent/owner"
	e.register(issuer.ClientRequest{ID: owner, Scopes: []string{"invoices.read"}, Resources: []string{stranger, tools}})
	status, out := e.token(url.Values{"grant_type": {issuer.GrantClientCredentials}, "resource": {stranger}}, e.basic(owner))
	if status != http.StatusOK {
		t.Fatalf("owner token: %d %v", status, out)
	}
	ownerToken := out["access_token"].(string)
	root, _ := e.session()
	tA := e.mustExchange(agentA, root, agentB, "invoices.read")
	tB := e.mustExchange(agentB, tA, agentC, "invoices.read")
	tC := e.mustExchange(agentC, tB, agentD, "invoices.read")

	// A token revoked below an active root: its node is revoked for the "revoked ancestor" case.
	root2, _ := e.session()
	tA2 := e.mustExchange(agentA, root2, agentB, "invoices.read")
	if _, err := e.is.RevokeTarget(t.Context(), issuer.Target{SID: claims(t, tA2).SID}); err != nil {
		t.Fatal(err)
	}
	// A subject token revoked by its jti, its node still active.
	tB2 := e.mustExchange(agentB, e.mustExchange(agentA, root2Fresh(t, e), agentB, "invoices.read"), agentC, "invoices.read")
	if _, err := e.is.RevokeTarget(t.Context(), issuer.Target{JTI: claims(t, tB2).JTI}); err != nil {
		t.Fatal(err)
	}
	// A disabled client.
	e.register(issuer.ClientRequest{ID: "spiffe://example.org/tenant/acme/agent/disabled", Scopes: []string{"invoices.read"},
		Resources: []string{tools}})
	if _, err := e.is.SetDisabled(t.Context(), "spiffe://example.org/tenant/acme/agent/disabled", true); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, caller, subject, resource, scope string
		status                                 int
		code, description                      string
	}{
		{"not addressed to the caller", agentC, tA, agentC, "invoices.read", 400, issuer.CodeInvalidGrant, "the subject token is not addressed to the caller"},
		{"actor not allowed", stranger, ownerToken, tools, "invoices.read", 400, issuer.CodeInvalidGrant, "the caller is not allowed to act for " + owner},
		{"depth cap", agentD, tC, tools, "invoices.read", 400, issuer.CodeInvalidRequest, issuer.DepthExceeded},
		{"scope widens", agentC, tB, tools, "invoices.write", 400, issuer.CodeInvalidScope, ""},
		{"scope missing", agentC, tB, tools, "", 400, issuer.CodeInvalidScope, ""},
		{"resource outside the session", agentC, tB, "https://elsewhere.example.org/api", "invoices.read", 400, issuer.CodeInvalidTarget, ""},
		{"revoked ancestor", agentB, tA2, agentC, "invoices.read", 400, issuer.CodeInvalidGrant, ""},
		{"revoked subject token", agentC, tB2, tools, "invoices.read", 400, issuer.CodeInvalidGrant, "the subject token or one of its ancestors was revoked"},
		{"forged subject token", agentC, tB[:len(tB)-4] + "AAAA", tools, "invoices.read", 400, issuer.CodeInvalidGrant, ""},
		{"grant not allowed to the client", "spiffe://example.org/tenant/acme/agent/cc-only", tB, tools, "invoices.read", 400, issuer.CodeUnauthorizedClient, ""},
		{"disabled client", "spiffe://example.org/tenant/acme/agent/disabled", tB, tools, "invoices.read", 401, issuer.CodeInvalidClient, "the client is disabled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"grant_type": {issuer.GrantTokenExchange}, "subject_token": {tc.subject},
				"subject_token_type": {issuer.TokenTypeAccessToken}, "resource": {tc.resource}}
			if tc.scope != "" {
				form.Set("scope", tc.scope)
			}
			status, out := e.token(form, e.basic(tc.caller))
			if status != tc.status || out["error"] != tc.code {
				t.Fatalf("%d %v, want %d %s", status, out, tc.status, tc.code)
			}
			if tc.description != "" && out["error_description"] != tc.description {
				t.Fatalf("error_description = %q, want %q", out["error_description"], tc.description)
			}
			if out["_cache_control"] != "no-store" {
				t.Fatalf("Cache-Control = %q", out["_cache_control"])
			}
		})
	}
}

// root2Fresh opens another session and returns its token.
func root2Fresh(t *testing.T, e *env) string {
	t.Helper()
	tok, _ := e.session()
	return tok
}

// TestExchangeLifetimeNeverExceedsParent: a session of one minute bounds every token below it, whatever the
// tokens' own TTL (spec/agent-auth.md §2.4 step 6).
func TestExchangeLifetimeNeverExceedsParent(t *testing.T) {
	e := newEnv(t, issuer.Config{AccessTokenTTL: 10 * time.Minute, DelegatedTokenTTL: 10 * time.Minute})
	e.chain()
	status, out := e.adminJSON(http.MethodPost, issuer.PathSessions, issuer.SessionRequest{
		User: issuer.Principal{Issuer: idp, Subject: "u-1"}, Agent: agentA, Scopes: []string{"invoices.read"},
		Resources: []string{agentB, agentC, tools}, TTL: 60})
	if status != http.StatusCreated {
		t.Fatalf("open session: %d %v", status, out)
	}
	root := out["token"].(map[string]any)["access_token"].(string)
	tA := e.mustExchange(agentA, root, agentB, "invoices.read")
	tB := e.mustExchange(agentB, tA, agentC, "invoices.read")
	cr, cA, cB := claims(t, root), claims(t, tA), claims(t, tB)
	if cr.ExpiresAt-cr.IssuedAt > 61 {
		t.Fatalf("the root token outlives its one-minute session: %ds", cr.ExpiresAt-cr.IssuedAt)
	}
	if cA.ExpiresAt > cr.ExpiresAt || cB.ExpiresAt > cA.ExpiresAt {
		t.Fatalf("exp grows down the chain: %d %d %d", cr.ExpiresAt, cA.ExpiresAt, cB.ExpiresAt)
	}
}

// TestClientAssertionReplayRefused: a private_key_jwt assertion works once; the same jti again is invalid_client.
func TestClientAssertionReplayRefused(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	k := mustKey(t, keys.ES256)
	jwk, err := k.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	id := "spiffe://example.org/tenant/acme/agent/keyed"
	status, out := e.adminJSON(http.MethodPost, issuer.PathClients, map[string]any{"client_id": id, "tenant": "acme",
		"scope": []string{"invoices.read"}, "resources": []string{tools}, "jwks": map[string]any{"keys": []any{rawJSON(jwk)}}})
	if status != http.StatusCreated || out["client_secret"] != nil {
		t.Fatalf("register: %d %v", status, out)
	}
	assertion := e.assertion(t, k, id, "a-1", nil)
	form := url.Values{"grant_type": {issuer.GrantClientCredentials}, "client_assertion_type": {issuer.AssertionTypeJWTBearer},
		"client_assertion": {assertion}}
	if status, out := e.token(form); status != http.StatusOK || out["token_type"] != "Bearer" {
		t.Fatalf("first use: %d %v", status, out)
	}
	if status, out := e.token(form); status != http.StatusUnauthorized || out["error"] != issuer.CodeInvalidClient {
		t.Fatalf("replay: %d %v", status, out)
	}
	for name, mutate := range map[string]func(map[string]any){
		"wrong audience": func(c map[string]any) { c["aud"] = "https://other.example.org" },
		"expired":        func(c map[string]any) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() },
		"too long":       func(c map[string]any) { c["exp"] = time.Now().Add(time.Hour).Unix() },
		"no jti":         func(c map[string]any) { delete(c, "jti") },
		"iss is not sub": func(c map[string]any) { c["iss"] = agentA },
	} {
		form.Set("client_assertion", e.assertion(t, k, id, "a-"+name, mutate))
		if status, out := e.token(form); status != http.StatusUnauthorized || out["error"] != issuer.CodeInvalidClient {
			t.Fatalf("%s: %d %v", name, status, out)
		}
	}
	other := mustKey(t, keys.ES256)
	form.Set("client_assertion", e.assertion(t, other, id, "a-other-key", nil))
	if status, out := e.token(form); status != http.StatusUnauthorized || out["error"] != issuer.CodeInvalidClient {
		t.Fatalf("signed by another key: %d %v", status, out)
	}
}

// TestDPoPBindsTokens: a valid proof binds the token (cnf.jkt, token_type DPoP); every wrong proof is
// invalid_dpop_proof; a bound parent needs a bound child.
func TestDPoPBindsTokens(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	kA, kB := mustKey(t, keys.ES256), mustKey(t, keys.EdDSA)
	form := url.Values{"grant_type": {issuer.GrantClientCredentials}, "resource": {agentB}, "scope": {"invoices.read"}}
	status, out := e.token(form, e.basic(agentA), withDPoP(e.dpopProof(kA, nil)))
	if status != http.StatusOK || out["token_type"] != "DPoP" {
		t.Fatalf("DPoP client credentials: %d %v", status, out)
	}
	tA := out["access_token"].(string)
	if c := claims(t, tA); c.Cnf == nil || c.Cnf.JKT != kA.Thumbprint() || c.Act != nil || c.Subject != agentA {
		t.Fatalf("bound token claims = %+v", c)
	}
	if got := e.introspect(rs, tA); got["token_type"] != "DPoP" || got["cnf"] == nil {
		t.Fatalf("introspection of a bound token = %v", got)
	}
	bad := map[string]string{
		"wrong htu":    e.dpopProof(kA, func(c map[string]any) { c["htu"] = "https://elsewhere.example.org/oauth/token" }),
		"wrong htm":    e.dpopProof(kA, func(c map[string]any) { c["htm"] = "GET" }),
		"old iat":      e.dpopProof(kA, func(c map[string]any) { c["iat"] = time.Now().Add(-10 * time.Minute).Unix() }),
		"no jti":       e.dpopProof(kA, func(c map[string]any) { delete(c, "jti") }),
		"ath present":  e.dpopProof(kA, func(c map[string]any) { c["ath"] = "x" }),
		"not a JWT":    "not.a.jwt",
		"HMAC or none": "eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ.e30.",
	}
	for name, proof := range bad {
		if status, out := e.token(form, e.basic(agentA), withDPoP(proof)); status != 400 || out["error"] != issuer.CodeInvalidDPoPProof {
			t.Fatalf("%s: %d %v", name, status, out)
		}
	}
	replayed := e.dpopProof(kA, nil)
	if status, _ := e.token(form, e.basic(agentA), withDPoP(replayed)); status != http.StatusOK {
		t.Fatalf("fresh proof refused: %d", status)
	}
	if status, out := e.token(form, e.basic(agentA), withDPoP(replayed)); status != 400 || out["error"] != issuer.CodeInvalidDPoPProof {
		t.Fatalf("replayed proof: %d %v", status, out)
	}
	// The bound token of A, addressed to B: B must bind its child too.
	if status, out := e.exchange(agentB, tA, agentC, "invoices.read"); status != 400 || out["error"] != issuer.CodeInvalidDPoPProof {
		t.Fatalf("unbound child of a bound parent: %d %v", status, out)
	}
	tB := e.mustExchange(agentB, tA, agentC, "invoices.read", withDPoP(e.dpopProof(kB, nil)))
	if c := claims(t, tB); c.Cnf == nil || c.Cnf.JKT != kB.Thumbprint() || !slices.Equal(c.Actors(), []string{agentB, agentA}) {
		t.Fatalf("B's bound token = %+v", c)
	}
}
