package issuer_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/issuer"
)

// TestExchangeStaysInItsTenant: an actor of another tenant may not act in a session, even when it is listed as
// an actor — otherwise a tenant kill switch would not reach it.
func TestExchangeStaysInItsTenant(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	const outsider = "spiffe://example.org/tenant/globex/agent/x"
	e.register(issuer.ClientRequest{ID: outsider, Tenant: "globex", Scopes: []string{"invoices.read"}, Resources: []string{tools},
		GrantTypes: []string{issuer.GrantTokenExchange}})
	e.register(issuer.ClientRequest{ID: "spiffe://example.org/tenant/acme/agent/lender", Scopes: []string{"invoices.read"},
		Resources: []string{outsider}, Actors: []string{outsider}})
	status, out := e.token(ccForm(outsider, "invoices.read"), e.basic("spiffe://example.org/tenant/acme/agent/lender"))
	if status != http.StatusOK {
		t.Fatalf("lender token: %d %v", status, out)
	}
	if status, out := e.exchange(outsider, out["access_token"].(string), tools, "invoices.read"); status != 400 ||
		out["error"] != issuer.CodeInvalidGrant || out["error_description"] != "the caller belongs to another tenant than the session" {
		t.Fatalf("cross-tenant exchange: %d %v", status, out)
	}
}

// TestDisabledHolderStopsDelegation: disabling an agent stops every new token that would name it, also one its
// delegate asks for with a token the agent handed down; enabling lets them through again. A refused exchange
// leaves no node behind.
func TestDisabledHolderStopsDelegation(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	root, rootSID := e.session()
	tA := e.mustExchange(agentA, root, agentB, "invoices.read")
	if _, err := e.is.SetDisabled(t.Context(), agentA, true); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if status, out := e.exchange(agentB, tA, agentC, "invoices.read"); status != 400 || out["error"] != issuer.CodeInvalidGrant ||
			!strings.Contains(out["error_description"].(string), "disabled") {
			t.Fatalf("exchange of a disabled agent's token: %d %v", status, out)
		}
	}
	tree, err := e.is.Tree(t.Context(), rootSID)
	if err != nil || len(tree) != 2 {
		t.Fatalf("refused exchanges left nodes: %d nodes, %v", len(tree), err)
	}
	if _, err := e.is.SetDisabled(t.Context(), agentA, false); err != nil {
		t.Fatal(err)
	}
	e.mustExchange(agentB, tA, agentC, "invoices.read")
}

// TestWithdrawnSigningKey: a key watermark rejects every token the key signed, whatever its iat, and issuance
// goes on with the next key.
func TestWithdrawnSigningKey(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	status, out := e.token(ccForm(tools, "invoices.read"), e.basic(agentA))
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, out)
	}
	old := out["access_token"].(string)
	header, _, _ := keys.Decode(old)
	kid := strings.Split(strings.Split(string(header), `"kid":"`)[1], `"`)[0]
	withdrawn := e.ring.Active()
	if _, err := e.is.RevokeTarget(t.Context(), issuer.Target{Key: issuer.MarkKey{Kind: issuer.MarkSigningKey, Value: kid}}); err != nil {
		t.Fatal(err)
	}
	if got := e.introspect(rs, old); got["active"] != false {
		t.Fatalf("a token of the withdrawn key is active: %v", got)
	}
	// Whoever stole the key mints a token issued after the withdrawal: still rejected.
	c := claims(t, old)
	c.IssuedAt, c.ExpiresAt, c.JTI = c.IssuedAt+5, c.ExpiresAt+5, "t_forged"
	payload, _ := json.Marshal(c)
	signer, err := keys.NewSigner(withdrawn)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := signer.Sign(payload, keys.TypeAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.introspect(rs, forged); got["active"] != false {
		t.Fatalf("a token signed by the withdrawn key after its withdrawal is active: %v", got)
	}
	status, out = e.token(ccForm(tools, "invoices.read"), e.basic(agentA))
	if status != http.StatusOK {
		t.Fatalf("token after the withdrawal: %d %v", status, out)
	}
	fresh := out["access_token"].(string)
	if h, _, _ := keys.Decode(fresh); strings.Contains(string(h), kid) {
		t.Fatalf("a new token is signed by the withdrawn key: %s", h)
	}
	if got := e.introspect(rs, fresh); got["active"] != true {
		t.Fatalf("a token of the next key is inactive: %v", got)
	}
}

// TestRefusedRefreshKeepsTheRefreshToken: a refresh refused because the client is disabled does not use up the
// refresh token; once enabled, the same refresh token works (and is not taken for a stolen one).
func TestRefusedRefreshKeepsTheRefreshToken(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	root, _ := e.session()
	form := url.Values{"grant_type": {issuer.GrantTokenExchange}, "subject_token": {root},
		"subject_token_type": {issuer.TokenTypeAccessToken}, "resource": {agentB, tools}, "scope": {"invoices.read"}}
	status, out := e.token(form, e.basic(agentA))
	if status != http.StatusOK {
		t.Fatalf("exchange: %d %v", status, out)
	}
	rf := url.Values{"grant_type": {issuer.GrantRefreshToken}, "refresh_token": {out["refresh_token"].(string)}, "resource": {tools}}
	if _, err := e.is.Revoke(t.Context(), issuer.Op{Kind: issuer.OpDisable, Key: issuer.MarkKey{Kind: issuer.MarkTenant, Value: "acme"}}); err != nil {
		t.Fatal(err)
	}
	if status, out := e.token(rf, e.basic(agentA)); status != 400 || !strings.Contains(out["error_description"].(string), "disabled") {
		t.Fatalf("refresh while the tenant is disabled: %d %v", status, out)
	}
	if _, err := e.is.Revoke(t.Context(), issuer.Op{Kind: issuer.OpEnable, Key: issuer.MarkKey{Kind: issuer.MarkTenant, Value: "acme"}}); err != nil {
		t.Fatal(err)
	}
	if status, out := e.token(rf, e.basic(agentA)); status != http.StatusOK {
		t.Fatalf("refresh after enable: %d %v", status, out)
	}
}

// TestBadValuesAreRefusedNotStored: oversized values and control characters are 400s that change nothing, never
// 500s.
func TestBadValuesAreRefusedNotStored(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	huge := strings.Repeat("x", 40_000)
	if status, out := e.adminJSON(http.MethodPost, issuer.PathClients, issuer.ClientRequest{ID: "big", Tenant: huge}); status != 400 {
		t.Fatalf("40 KB tenant: %d %v", status, out)
	}
	if status, out := e.adminJSON(http.MethodPost, issuer.PathRevocations, issuer.RevocationRequest{JTI: huge}); status != 400 {
		t.Fatalf("40 KB jti: %d %v", status, out)
	}
	if status, out := e.adminJSON(http.MethodPost, issuer.PathRevocations, issuer.RevocationRequest{Tenant: "acme\x00x", Disable: true}); status != 400 {
		t.Fatalf("NUL in a key: %d %v", status, out)
	}
	if status, out := e.adminJSON(http.MethodPost, issuer.PathSessions, issuer.SessionRequest{
		User: issuer.Principal{Issuer: idp, Subject: "alice\x00x"}, Agent: agentA, Scopes: []string{"invoices.read"}, Resources: []string{tools}}); status != 400 {
		t.Fatalf("NUL in a subject: %d %v", status, out)
	}
	if status, out := e.adminJSON(http.MethodPost, issuer.PathClients, map[string]any{"client_id": "two-in-one", "tenant": "acme",
		"scope": []string{"ssf.read other.write"}}); status != 400 {
		t.Fatalf("two scopes in one entry: %d %v", status, out)
	}
	ops, err := e.db.Ops(t.Context(), 0, 100)
	if err != nil || len(ops) != 0 {
		t.Fatalf("refused requests wrote ops: %v %v", ops, err)
	}
	k := mustKey(t, keys.ES256)
	proof := e.dpopProof(k, func(c map[string]any) { c["jti"] = huge })
	if status, out := e.token(ccForm(tools, "invoices.read"), e.basic(agentA), withDPoP(proof)); status >= 500 {
		t.Fatalf("a 40 KB DPoP jti: %d %v", status, out)
	}
}

// TestIntrospectionIsForResourceServers: only clients registered for it may introspect, and only their
// tenant's tokens come back active.
func TestIntrospectionIsForResourceServers(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	e.register(issuer.ClientRequest{ID: "globex-rs", Tenant: "globex", Scopes: []string{"x"}, Resources: []string{tools}, Introspection: true})
	status, out := e.token(ccForm(tools, "invoices.read"), e.basic(agentA))
	if status != http.StatusOK {
		t.Fatal(status)
	}
	tok := out["access_token"].(string)
	status, out = e.do(http.MethodPost, issuer.PathIntrospect, "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"token": {tok}}.Encode()), e.basic(agentB))
	if status != http.StatusForbidden || out["error"] != issuer.CodeUnauthorizedClient {
		t.Fatalf("introspection by an agent: %d %v", status, out)
	}
	if got := e.introspect("globex-rs", tok); got["active"] != false || len(got) > 3 {
		t.Fatalf("another tenant's resource server sees the token: %v", got)
	}
	if got := e.introspect(rs, tok); got["active"] != true {
		t.Fatalf("the tenant's resource server: %v", got)
	}
}

// TestRegistrationRefusesReservedIDsAndScopesAreExact: a client may not take the ID of a static token, and only
// the SSF scopes themselves keep a token outside the session tree.
func TestRegistrationRefusesReservedIDsAndScopesAreExact(t *testing.T) {
	e := newEnv(t, issuer.Config{RequireDPoP: true})
	if status, _ := e.adminJSON(http.MethodPost, issuer.PathClients, issuer.ClientRequest{ID: "admin", Tenant: "acme"}); status != http.StatusConflict {
		t.Fatalf("registering admin: %d", status)
	}
	e.register(issuer.ClientRequest{ID: "lookalike", Scopes: []string{"ssf.payments.write"}, Resources: []string{tools}})
	if status, out := e.token(ccForm("", ""), e.basic("lookalike")); status != 400 || out["error"] != issuer.CodeInvalidDPoPProof {
		t.Fatalf("an ssf.-prefixed scope escaped require_dpop: %d %v", status, out)
	}
	e.register(issuer.ClientRequest{ID: "receiver", Scopes: []string{"ssf.read"}, Resources: []string{tools}})
	if status, out := e.token(ccForm("", ""), e.basic("receiver")); status != http.StatusOK || claims(t, out["access_token"].(string)).SID != "" {
		t.Fatalf("an SSF management token: %d %v", status, out)
	}
	if status, out := e.token(ccForm("", ""), e.basic("receiver"), withDPoP(e.dpopProof(mustKey(t, keys.ES256), nil))); status != 400 {
		t.Fatalf("a DPoP-bound SSF management token, which the management API could not use: %d %v", status, out)
	}
}

// TestRevocationIsIdempotent: revoking the same token again records nothing new and sends no second event.
func TestRevocationIsIdempotent(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	_, out := e.token(ccForm(tools, "invoices.read"), e.basic(agentA))
	tok := out["access_token"].(string)
	for range 3 {
		status, _ := e.do(http.MethodPost, issuer.PathRevoke, "application/x-www-form-urlencoded",
			strings.NewReader(url.Values{"token": {tok}}.Encode()), e.basic(agentA))
		if status != http.StatusOK {
			t.Fatal(status)
		}
	}
	ops, err := e.db.Ops(t.Context(), 0, 100)
	if err != nil || len(ops) != 1 {
		t.Fatalf("%d ops for one token revoked three times (%v)", len(ops), err)
	}
	// An empty parameter counts as absent (RFC 6749 §3.1): scope= asks for the default scopes.
	if status, out := e.token(url.Values{"grant_type": {issuer.GrantClientCredentials}, "scope": {""}, "resource": {tools}},
		e.basic(agentA)); status != http.StatusOK {
		t.Fatalf("scope=: %d %v", status, out)
	}
}
