package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
)

// form posts a form to the issuer with Basic client authentication and decodes the JSON answer.
func (h *harness) form(path, id, secret string, f url.Values, dpop ...string) (int, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.base+path, strings.NewReader(f.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	for _, p := range dpop {
		req.Header.Set("DPoP", p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// registerClient registers a client through the management API with the admin token and returns its secret.
func (h *harness) registerClient(req issuer.ClientRequest) string {
	h.t.Helper()
	status, _, body := h.call(http.MethodPost, issuer.PathClients, h.token, req)
	if status != http.StatusCreated {
		h.t.Fatalf("register %s: %d %s", req.ID, status, body)
	}
	var out issuer.Registered
	if err := json.Unmarshal(body, &out); err != nil {
		h.t.Fatal(err)
	}
	return out.Secret
}

// TestIssuerTokensOnTheManagementAPI: a receiver registered as a client gets ssf.manage and ssf.read by client
// credentials, manages streams with that token, and the stream belongs to it, not to the admin.
func TestIssuerTokensOnTheManagementAPI(t *testing.T) {
	h := newHarness(t)
	secret := h.registerClient(issuer.ClientRequest{ID: "receiver-a", Tenant: "acme", Scopes: []string{"ssf.manage", "ssf.read"},
		Resources: []string{h.issuer}})
	status, out := h.form(issuer.PathToken, "receiver-a", secret, url.Values{"grant_type": {issuer.GrantClientCredentials}})
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, out)
	}
	tok := out["access_token"].(string)
	rc, err := receiver.Discover(t.Context(), h.issuer, receiver.WithToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rc.CreateStream(t.Context(), receiver.StreamRequest{EventsRequested: []schemas.EventType{schemas.EventSessionRevoked}})
	if err != nil {
		t.Fatalf("create a stream with an issuer token: %v", err)
	}
	if !slices.Equal(cfg.Audience, schemas.Audience{"receiver-a"}) {
		t.Fatalf("aud = %v, want the token's client", cfg.Audience)
	}
	if _, err := h.client.GetStream(t.Context(), cfg.StreamID); err == nil {
		t.Fatal("the admin sees the receiver's stream: streams belong to the client that created them")
	}
	// A token for another audience, or a revoked one, is refused.
	other := h.registerClient(issuer.ClientRequest{ID: "elsewhere", Tenant: "acme", Scopes: []string{"ssf.manage"}, Resources: []string{"https://other.example.org"}})
	status, out = h.form(issuer.PathToken, "elsewhere", other, url.Values{"grant_type": {issuer.GrantClientCredentials}})
	if status != http.StatusOK {
		t.Fatalf("token for another audience: %d %v", status, out)
	}
	if status, _, _ := h.call(http.MethodGet, "/ssf/streams", out["access_token"].(string), nil); status != http.StatusUnauthorized {
		t.Fatalf("a token for another audience on the management API: %d", status)
	}
	// An agent token bound with DPoP is refused too: the management API checks no proof.
	agent := h.registerClient(issuer.ClientRequest{ID: "bound-agent", Tenant: "acme", Scopes: []string{"ssf.manage", "x"}, Resources: []string{h.issuer}})
	status, out = h.form(issuer.PathToken, "bound-agent", agent, url.Values{"grant_type": {issuer.GrantClientCredentials}, "scope": {"ssf.manage x"}})
	if status != http.StatusOK {
		t.Fatalf("agent token: %d %v", status, out)
	}
	if status, _, _ := h.call(http.MethodGet, "/ssf/streams", out["access_token"].(string), nil); status != http.StatusOK {
		t.Fatalf("an unbound agent token with ssf.manage: %d", status)
	}
	k, err := keys.Generate(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := keys.SignWithJWK(k, []byte(`{"jti":"p1","htm":"POST","htu":"`+h.issuer+issuer.PathToken+`","iat":`+
		strconv.FormatInt(time.Now().Unix(), 10)+`}`), keys.TypeDPoP)
	if err != nil {
		t.Fatal(err)
	}
	status, out = h.form(issuer.PathToken, "bound-agent", agent, url.Values{"grant_type": {issuer.GrantClientCredentials},
		"scope": {"ssf.manage x"}}, proof)
	if status != http.StatusOK || out["token_type"] != "DPoP" {
		t.Fatalf("bound agent token: %d %v", status, out)
	}
	if status, _, _ := h.call(http.MethodGet, "/ssf/streams", out["access_token"].(string), nil); status != http.StatusUnauthorized {
		t.Fatalf("a DPoP-bound token used as a bearer token on the management API: %d", status)
	}
	if _, err := h.srv.TokenIssuer().RevokeTarget(t.Context(), issuer.Target{Key: issuer.MarkKey{Kind: issuer.MarkClient, Value: "receiver-a"}}); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := h.call(http.MethodGet, "/ssf/streams", tok, nil); status != http.StatusUnauthorized {
		t.Fatalf("a revoked token on the management API: %d", status)
	}
}

// TestRevokingANodeSendsSessionRevokedSETs: human → A → B → C; revoking A's node makes B's and C's tokens inactive
// at introspection, and a stream that asked for session-revoked receives one signed SET per revoked node.
func TestRevokingANodeSendsSessionRevokedSETs(t *testing.T) {
	h := newHarness(t)
	stream := h.createPollStream()
	const (
		a, b, c = "spiffe://example.org/tenant/acme/agent/a", "spiffe://example.org/tenant/acme/agent/b", "spiffe://example.org/tenant/acme/agent/c"
		tools   = "https://tools.example.org/mcp"
	)
	secrets := map[string]string{}
	res := []string{b, c, tools}
	secrets["rs"] = h.registerClient(issuer.ClientRequest{ID: "rs", Tenant: "acme", Scopes: []string{"x"}, Resources: []string{tools}, Introspection: true})
	for id, next := range map[string]string{a: b, b: c, c: ""} {
		var actors []string
		if next != "" {
			actors = []string{next}
		}
		secrets[id] = h.registerClient(issuer.ClientRequest{ID: id, Tenant: "acme", GrantTypes: issuer.GrantTypes(),
			Scopes: []string{"invoices.read"}, Resources: res, Actors: actors})
	}
	status, _, body := h.call(http.MethodPost, issuer.PathSessions, h.token, issuer.SessionRequest{
		User: issuer.Principal{Issuer: "https://idp.example.org", Subject: "u-1"}, Agent: a, Scopes: []string{"invoices.read"}, Resources: res})
	if status != http.StatusCreated {
		t.Fatalf("open session: %d %s", status, body)
	}
	var sess issuer.Session
	if err := json.Unmarshal(body, &sess); err != nil {
		t.Fatal(err)
	}
	exchange := func(caller, subject, resource string) string {
		status, out := h.form(issuer.PathToken, caller, secrets[caller], url.Values{"grant_type": {issuer.GrantTokenExchange},
			"subject_token": {subject}, "subject_token_type": {issuer.TokenTypeAccessToken}, "resource": {resource}, "scope": {"invoices.read"}})
		if status != http.StatusOK {
			t.Fatalf("exchange by %s: %d %v", caller, status, out)
		}
		return out["access_token"].(string)
	}
	tA := exchange(a, sess.Token.AccessToken, b)
	tB := exchange(b, tA, c)
	tC := exchange(c, tB, tools)
	ca, err := h.srv.TokenIssuer().VerifyAccessToken(t.Context(), tA)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body = h.call(http.MethodPost, issuer.PathRevocations, h.token, issuer.RevocationRequest{SID: ca.SID, Reason: "prompt injection"})
	if status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, body)
	}
	for _, tok := range []string{tB, tC} {
		if status, out := h.form(issuer.PathIntrospect, "rs", secrets["rs"], url.Values{"token": {tok}}); status != http.StatusOK || out["active"] != false {
			t.Fatalf("introspection after the ancestor's revocation: %d %v", status, out)
		}
	}

	// The SETs arrive on the stream: one per revoked node, signed, naming the session and the human.
	v := h.verifier(stream.Audience[0])
	var sessions []string
	deadline := time.Now().Add(10 * time.Second)
	maxEvents := 10
	for len(sessions) < 3 && time.Now().Before(deadline) {
		resp := h.poll(stream, schemas.PollRequest{MaxEvents: &maxEvents})
		var acks []string
		for jti, token := range resp.Sets {
			set, err := v.Verify(context.Background(), token)
			if err != nil {
				t.Fatalf("SET does not verify: %v", err)
			}
			acks = append(acks, jti)
			if set.Event.Type != schemas.EventSessionRevoked {
				continue
			}
			s, _ := set.Subject.Member(schemas.RoleSession)
			u, _ := set.Subject.Member(schemas.RoleUser)
			if u.Get("sub") != "u-1" {
				t.Fatalf("the SET does not name the human: %s", set.Subject)
			}
			sessions = append(sessions, s.Get("id"))
		}
		if len(acks) > 0 {
			zero := 0
			h.poll(stream, schemas.PollRequest{Ack: acks, MaxEvents: &zero, ReturnImmediately: true})
		}
	}
	tree, err := h.srv.TokenIssuer().Tree(t.Context(), ca.SID)
	if err != nil || len(tree) != 3 {
		t.Fatalf("A's subtree: %d nodes, %v", len(tree), err)
	}
	var wantAll []string
	for _, n := range tree {
		wantAll = append(wantAll, n.ID)
	}
	slices.Sort(sessions)
	slices.Sort(wantAll)
	if !slices.Equal(sessions, wantAll) {
		t.Fatalf("session-revoked SETs for %v, want %v", sessions, wantAll)
	}
}
