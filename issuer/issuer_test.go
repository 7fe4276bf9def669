package issuer_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/schemas"
)

func ccForm(resource, scope string) url.Values {
	f := url.Values{"grant_type": {issuer.GrantClientCredentials}}
	if resource != "" {
		f.Set("resource", resource)
	}
	if scope != "" {
		f.Set("scope", scope)
	}
	return f
}

// TestClientCredentials: an agent acting as itself gets a token with sub = client_id = its SPIFFE ID, no act, in
// one workload node per run; SSF management scopes stay outside the tree; requests outside the client's
// registration fail with invalid_scope and invalid_target.
func TestClientCredentials(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	e.register(issuer.ClientRequest{ID: "receiver-a", Scopes: []string{"ssf.manage", "ssf.read"}, Resources: []string{"https://tx.example.org"}})

	status, out := e.token(ccForm(tools, "invoices.read"), e.basic(agentA))
	if status != http.StatusOK || out["token_type"] != "Bearer" || out["scope"] != "invoices.read" || out["expires_in"].(float64) > 600 {
		t.Fatalf("client credentials: %d %v", status, out)
	}
	c := claims(t, out["access_token"].(string))
	if c.Subject != agentA || c.ClientID != agentA || c.Act != nil || c.SID == "" || c.Delegation.Depth != 0 ||
		!slices.Equal(c.Delegation.Path, []string{c.SID}) || c.Tenant != "acme" || c.Audience[0] != tools {
		t.Fatalf("claims = %+v", c)
	}
	_, again := e.token(ccForm(agentB, "invoices.read"), e.basic(agentA))
	if sid := claims(t, again["access_token"].(string)).SID; sid != c.SID {
		t.Fatalf("a second token of the same run is in node %s, not %s", sid, c.SID)
	}

	status, out = e.token(ccForm("", ""), e.basic("receiver-a"))
	if status != http.StatusOK {
		t.Fatalf("SSF management token: %d %v", status, out)
	}
	if m := claims(t, out["access_token"].(string)); m.SID != "" || m.Delegation != nil || m.Audience[0] != "https://tx.example.org" ||
		m.Scope != "ssf.manage ssf.read" {
		t.Fatalf("management token claims = %+v", m)
	}

	for name, tc := range map[string]struct {
		form url.Values
		code string
	}{
		"scope not registered":    {ccForm(tools, "invoices.delete"), issuer.CodeInvalidScope},
		"resource not registered": {ccForm("https://elsewhere.example.org", "invoices.read"), issuer.CodeInvalidTarget},
		"two resources":           {url.Values{"grant_type": {issuer.GrantClientCredentials}, "resource": {tools, agentB}}, issuer.CodeInvalidTarget},
		"no resource, several":    {ccForm("", "invoices.read"), issuer.CodeInvalidTarget},
		"resource with fragment":  {ccForm(tools+"#x", ""), issuer.CodeInvalidTarget},
		"bad scope token":         {ccForm(tools, `a"b`), issuer.CodeInvalidScope},
		"unknown grant":           {url.Values{"grant_type": {"password"}}, issuer.CodeUnsupportedGrantType},
		"repeated parameter":      {url.Values{"grant_type": {issuer.GrantClientCredentials, issuer.GrantClientCredentials}}, issuer.CodeInvalidRequest},
	} {
		if status, out := e.token(tc.form, e.basic(agentA)); status != 400 || out["error"] != tc.code {
			t.Fatalf("%s: %d %v, want 400 %s", name, status, out, tc.code)
		}
	}
}

// TestClientAuthentication: RFC 6749 §2.3 and §5.2 at the token endpoint.
func TestClientAuthentication(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	e.register(issuer.ClientRequest{ID: "poster", Scopes: []string{"x"}, Resources: []string{tools}, AuthMethod: issuer.AuthClientSecretPost})
	form := ccForm(tools, "invoices.read")

	wrong := func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(agentA), "wrong") }
	if status, out := e.token(form, wrong); status != 401 || out["error"] != issuer.CodeInvalidClient ||
		!strings.HasPrefix(out["_www_authenticate"].(string), "Basic") {
		t.Fatalf("wrong secret: %d %v", status, out)
	}
	if status, out := e.token(form); status != 401 || out["error"] != issuer.CodeInvalidClient {
		t.Fatalf("no authentication: %d %v", status, out)
	}
	unknown := func(r *http.Request) { r.SetBasicAuth("nobody", "x") }
	if status, out := e.token(form, unknown); status != 401 || out["error"] != issuer.CodeInvalidClient {
		t.Fatalf("unknown client: %d %v", status, out)
	}
	post := url.Values{"grant_type": {issuer.GrantClientCredentials}, "client_id": {"poster"}, "client_secret": {e.secrets["poster"]}}
	if status, out := e.token(post); status != http.StatusOK {
		t.Fatalf("client_secret_post: %d %v", status, out)
	}
	// The registered method only: poster's secret in a Basic header is refused.
	if status, out := e.token(ccForm("", ""), e.basic("poster")); status != 401 || out["error"] != issuer.CodeInvalidClient {
		t.Fatalf("wrong method: %d %v", status, out)
	}
	// Two methods at once.
	both := url.Values{"grant_type": {issuer.GrantClientCredentials}, "client_id": {agentA}, "client_secret": {e.secrets[agentA]}}
	if status, out := e.token(both, e.basic(agentA)); status != 400 || out["error"] != issuer.CodeInvalidRequest {
		t.Fatalf("two methods: %d %v", status, out)
	}
	// Parameters in the query and other media types are refused before anything else.
	status, out := e.do(http.MethodPost, issuer.PathToken+"?client_secret=x", "application/x-www-form-urlencoded",
		strings.NewReader(form.Encode()), e.basic(agentA))
	if status != 400 || out["error"] != issuer.CodeInvalidRequest {
		t.Fatalf("query parameters: %d %v", status, out)
	}
	status, out = e.do(http.MethodPost, issuer.PathToken, "application/json", strings.NewReader(`{}`), e.basic(agentA))
	if status != 400 || out["error"] != issuer.CodeInvalidRequest {
		t.Fatalf("JSON body: %d %v", status, out)
	}
}

// TestRefreshTokenRotatesAndDetectsReuse: an exchange asking for several resources gets a node-bound refresh
// token; it mints for another resource in the same node (no extra depth), rotates on use, and a reused one
// revokes its node.
func TestRefreshTokenRotatesAndDetectsReuse(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	root, _ := e.session()
	form := url.Values{"grant_type": {issuer.GrantTokenExchange}, "subject_token": {root},
		"subject_token_type": {issuer.TokenTypeAccessToken}, "resource": {agentB, tools}, "scope": {"invoices.read"}}
	status, out := e.token(form, e.basic(agentA))
	if status != http.StatusOK || out["refresh_token"] == nil || out["issued_token_type"] != issuer.TokenTypeAccessToken {
		t.Fatalf("exchange for two resources: %d %v", status, out)
	}
	first := claims(t, out["access_token"].(string))
	refresh := out["refresh_token"].(string)
	rf := url.Values{"grant_type": {issuer.GrantRefreshToken}, "refresh_token": {refresh}, "resource": {tools}}
	status, out = e.token(rf, e.basic(agentA))
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, out)
	}
	second := claims(t, out["access_token"].(string))
	if second.SID != first.SID || second.Delegation.Depth != 1 || second.Audience[0] != tools || out["refresh_token"] == refresh {
		t.Fatalf("refreshed token %+v (first %+v), refresh %v", second, first, out["refresh_token"])
	}
	if status, out := e.token(url.Values{"grant_type": {issuer.GrantRefreshToken}, "refresh_token": {out["refresh_token"].(string)},
		"resource": {agentD}}, e.basic(agentA)); status != 400 || out["error"] != issuer.CodeInvalidTarget {
		t.Fatalf("refresh for a resource it was not granted: %d %v", status, out)
	}
	if status, out := e.token(rf, e.basic(agentB)); status != 400 || out["error"] != issuer.CodeInvalidGrant {
		t.Fatalf("refresh by another client: %d %v", status, out)
	}
	// Reuse of the first refresh token: the node and every token in it die.
	if status, out := e.token(rf, e.basic(agentA)); status != 400 || out["error"] != issuer.CodeInvalidGrant {
		t.Fatalf("reuse: %d %v", status, out)
	}
	if got := e.introspect(rs, out["access_token"].(string)); got["active"] != false {
		t.Fatalf("a token of the node survived refresh-token reuse: %v", got)
	}
}

// TestRevocationEndpoint: RFC 7009 — the token's client (or one it delegated from) revokes it; anything unknown
// answers 200 and changes nothing; another client is refused.
func TestRevocationEndpoint(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	root, _ := e.session()
	tA := e.mustExchange(agentA, root, agentB, "invoices.read")
	tB := e.mustExchange(agentB, tA, agentC, "invoices.read")
	revoke := func(as, token string) (int, map[string]any) {
		return e.do(http.MethodPost, issuer.PathRevoke, "application/x-www-form-urlencoded",
			strings.NewReader(url.Values{"token": {token}}.Encode()), e.basic(as))
	}
	if status, _ := revoke(agentD, tB); status != http.StatusOK {
		t.Fatalf("a stranger revokes: %d, want 200 (RFC 7009 §2.2)", status)
	}
	if got := e.introspect(rs, tB); got["active"] != true {
		t.Fatalf("a stranger's revocation took effect: %v", got)
	}
	if status, _ := revoke(agentA, "not-a-token"); status != http.StatusOK {
		t.Fatalf("unknown token: %d", status)
	}
	if got := e.introspect(rs, tB); got["active"] != true {
		t.Fatalf("tB inactive before its revocation: %v", got)
	}
	// A delegated to B: A may revoke B's token.
	if status, out := revoke(agentA, tB); status != http.StatusOK {
		t.Fatalf("revoke: %d %v", status, out)
	}
	if got := e.introspect(rs, tB); got["active"] != false {
		t.Fatalf("tB active after revocation: %v", got)
	}
	if got := e.introspect(rs, tA); got["active"] != true {
		t.Fatalf("revoking tB revoked tA: %v", got)
	}
	if _, err := e.is.FlushOutbox(t.Context()); err != nil {
		t.Fatal(err)
	}
	evs := e.sink.all()
	if len(evs) != 1 || evs[0].Subject.Format() != schemas.FormatJWTID || evs[0].Subject.Get("jti") != claims(t, tB).JTI {
		t.Fatalf("events = %+v", evs)
	}
}

// TestWatermarkRevokesEarlierTokensOnly: a watermark on an agent kills every token it holds or delegated, and
// a token minted in the same second afterwards gets iat past the watermark and stays valid (spec/agent-auth.md
// §3.2 rule 1). With disable, no new token is issued.
func TestWatermarkRevokesEarlierTokensOnly(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.chain()
	root, _ := e.session()
	tA := e.mustExchange(agentA, root, agentB, "invoices.read")
	tB := e.mustExchange(agentB, tA, agentC, "invoices.read")
	ops, err := e.is.RevokeTarget(t.Context(), issuer.Target{Key: issuer.MarkKey{Kind: issuer.MarkActor, Value: agentA}})
	if err != nil || len(ops) != 1 {
		t.Fatalf("watermark: %v %v", ops, err)
	}
	for _, tok := range []string{tA, tB} {
		if got := e.introspect(rs, tok); got["active"] != false {
			t.Fatalf("a token delegated through A survived A's watermark: %v", got)
		}
	}
	// A new session after the watermark works, and its tokens are issued after it.
	root2, _ := e.session()
	tA2 := e.mustExchange(agentA, root2, agentB, "invoices.read")
	if c := claims(t, tA2); c.IssuedAt <= ops[0].At.Unix() {
		t.Fatalf("iat %d not after the watermark %d", c.IssuedAt, ops[0].At.Unix())
	}
	if got := e.introspect(rs, tA2); got["active"] != true {
		t.Fatalf("a token minted after the watermark is inactive: %v", got)
	}
	// Kill switch with disable: nothing new for A.
	if _, err := e.is.RevokeTarget(t.Context(), issuer.Target{Key: issuer.MarkKey{Kind: issuer.MarkActor, Value: agentA}, Disable: true}); err != nil {
		t.Fatal(err)
	}
	if status, out := e.token(ccForm(tools, "invoices.read"), e.basic(agentA)); status != 400 || out["error"] != issuer.CodeInvalidGrant {
		t.Fatalf("token for a disabled agent: %d %v", status, out)
	}
	if _, err := e.is.FlushOutbox(t.Context()); err != nil {
		t.Fatal(err)
	}
	var kill int
	for _, ev := range e.sink.all() {
		if app, ok := ev.Subject.Member(schemas.RoleApplication); ok && len(ev.Subject.Members()) == 1 && app.Get("uri") == agentA {
			kill++
		}
	}
	if kill != 2 {
		t.Fatalf("%d agent-wide session-revoked events, want 2 (one per watermark)", kill)
	}
}

// TestOutboxSurvivesSinkFailure: events of ops recorded while the sink fails are sent once it recovers, in order.
func TestOutboxSurvivesSinkFailure(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	e.sink.fail = true
	for _, sid := range []string{"s_one", "s_two"} {
		if _, err := e.is.RevokeTarget(t.Context(), issuer.Target{SID: sid}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.is.FlushOutbox(t.Context()); err == nil {
		t.Fatal("flush succeeded while the sink was down")
	}
	e.sink.mu.Lock()
	e.sink.fail = false
	e.sink.mu.Unlock()
	if n, err := e.is.FlushOutbox(t.Context()); err != nil || n != 2 {
		t.Fatalf("flush after recovery: %d %v", n, err)
	}
	var ids []string
	for _, ev := range e.sink.all() {
		s, _ := ev.Subject.Member(schemas.RoleSession)
		ids = append(ids, s.Get("id"))
	}
	if !slices.Equal(ids, []string{"s_one", "s_two"}) {
		t.Fatalf("events for %v, want s_one then s_two", ids)
	}
	if n, err := e.is.FlushOutbox(t.Context()); err != nil || n != 0 {
		t.Fatalf("a second flush sent %d again (%v)", n, err)
	}
}

// TestMetadata: RFC 8414 §3 at the well-known path, computed from the grants and methods.
func TestMetadata(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	status, out := e.do(http.MethodGet, issuer.WellKnownPath, "", nil, nil)
	if status != http.StatusOK || out["issuer"] != e.url || out["token_endpoint"] != e.url+issuer.PathToken ||
		out["jwks_uri"] != e.url+issuer.PathJWKS {
		t.Fatalf("metadata: %d %v", status, out)
	}
	if got := out["grant_types_supported"].([]any); len(got) != 3 {
		t.Fatalf("grant_types_supported = %v", got)
	}
	if got := out["dpop_signing_alg_values_supported"].([]any); len(got) != 2 || got[0] != "ES256" {
		t.Fatalf("dpop_signing_alg_values_supported = %v", got)
	}
	if _, ok := out["response_types_supported"].([]any); !ok {
		t.Fatalf("response_types_supported missing: %v", out)
	}
	status, jwks := e.do(http.MethodGet, issuer.PathJWKS, "", nil, nil)
	if status != http.StatusOK || len(jwks["keys"].([]any)) != 2 {
		t.Fatalf("jwks: %d %v", status, jwks)
	}
}

// TestClientRegistration: the management API validates every field at once and shows a secret only once.
func TestClientRegistration(t *testing.T) {
	e := newEnv(t, issuer.Config{})
	status, out := e.adminJSON(http.MethodPost, issuer.PathClients, map[string]any{"client_id": "spiffe://Example.org?x",
		"grant_types": []string{"password"}, "max_delegation_depth": 9, "resources": []string{"relative"}})
	if status != 400 || out["error"] != issuer.CodeInvalidRequest {
		t.Fatalf("bad registration: %d %v", status, out)
	}
	desc := out["error_description"].(string)
	for _, field := range []string{"client_id", "tenant", "grant_types", "max_delegation_depth", "resources"} {
		if !strings.Contains(desc, field+":") {
			t.Fatalf("%q does not report %s", desc, field)
		}
	}
	e.register(issuer.ClientRequest{ID: agentA, Scopes: []string{"a"}, Resources: []string{tools}})
	if status, _ := e.adminJSON(http.MethodPost, issuer.PathClients, issuer.ClientRequest{ID: agentA, Tenant: "acme"}); status != http.StatusConflict {
		t.Fatalf("duplicate: %d", status)
	}
	status, got := e.adminJSON(http.MethodGet, issuer.PathClients+"/"+url.PathEscape(agentA), nil)
	if status != http.StatusOK || got["client_id"] != agentA || got["secret_hash"] != nil || got["client_secret"] != nil {
		t.Fatalf("get: %d %v", status, got)
	}
	if status, got := e.adminJSON(http.MethodPatch, issuer.PathClients+"/"+agentA, map[string]any{"disabled": true}); status != http.StatusOK || got["disabled"] != true {
		t.Fatalf("disable: %d %v", status, got)
	}
	if status, _ := e.do(http.MethodGet, issuer.PathClients, "", nil, nil); status != http.StatusUnauthorized {
		t.Fatalf("management API without a token: %d", status)
	}
	_ = time.Second
}
