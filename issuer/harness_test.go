package issuer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/storage/bolt"
)

// Agent identities of the delegation chain human → A → B → C → D.
const (
	agentA = "spiffe://example.org/tenant/acme/agent/assistant"
	agentB = "spiffe://example.org/tenant/acme/agent/invoice-bot"
	agentC = "spiffe://example.org/tenant/acme/agent/ledger-tool"
	agentD = "spiffe://example.org/tenant/acme/agent/archiver"
	tools  = "https://tools.example.org/mcp/invoices"
	rs     = "tools-rs" // the resource server: it may introspect
	idp    = "https://idp.example.org"
	admin  = "admin-secret"
)

// env is an issuer on a real loopback HTTP server over a bbolt file, with a recording event sink.
type env struct {
	t    testing.TB
	is   *issuer.Issuer
	db   *bolt.DB
	url  string
	sink *recordSink
	// secrets of the clients registered by register, by client id.
	secrets map[string]string
	// http keeps enough idle connections for parallel benchmarks.
	http *http.Client
	// ring holds the issuer's signing keys.
	ring *keys.Ring
}

// recordSink keeps every event the issuer sends.
type recordSink struct {
	mu     sync.Mutex
	events []issuer.Event
	fail   bool
}

func (s *recordSink) Send(_ context.Context, events []issuer.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return fmt.Errorf("sink down")
	}
	s.events = append(s.events, events...)
	return nil
}

func (s *recordSink) all() []issuer.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]issuer.Event(nil), s.events...)
}

func newEnv(t testing.TB, cfg issuer.Config) *env {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "ssfd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return newEnvOn(t, db, cfg)
}

func newEnvOn(t testing.TB, db *bolt.DB, cfg issuer.Config) *env {
	t.Helper()
	ring, err := keys.NewRing(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	sink := &recordSink{}
	is, err := issuer.New(base, db, ring, issuer.WithConfig(cfg), issuer.WithEventSink(sink),
		issuer.WithKeyRotation(ring.Rotate), issuer.WithReservedClientIDs("admin"))
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	is.Register(e, func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Request().Header.Get("Authorization") != "Bearer "+admin {
				return c.NoContent(http.StatusUnauthorized)
			}
			return next(c)
		}
	})
	srv.Config.Handler = e
	srv.Start()
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(client.CloseIdleConnections)
	return &env{t: t, is: is, db: db, url: base, sink: sink, secrets: map[string]string{}, http: client, ring: ring}
}

// do sends a request and decodes a JSON answer.
func (e *env) do(method, path, contentType string, body io.Reader, edit func(*http.Request)) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			e.t.Fatalf("%s %s: %d %s: not JSON", method, path, resp.StatusCode, data)
		}
	}
	out["_www_authenticate"] = resp.Header.Get("WWW-Authenticate")
	out["_cache_control"] = resp.Header.Get("Cache-Control")
	return resp.StatusCode, out
}

// adminJSON calls the management API with the admin token.
func (e *env) adminJSON(method, path string, v any) (int, map[string]any) {
	e.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	var body io.Reader
	if v != nil {
		body = strings.NewReader(string(data))
	}
	return e.do(method, path, "application/json", body, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+admin) })
}

// register registers a client_secret_basic client allowed every grant, and remembers its secret.
func (e *env) register(req issuer.ClientRequest) {
	e.t.Helper()
	if req.Tenant == "" {
		req.Tenant = "acme"
	}
	if req.GrantTypes == nil {
		req.GrantTypes = issuer.GrantTypes()
	}
	status, out := e.adminJSON(http.MethodPost, issuer.PathClients, req)
	if status != http.StatusCreated {
		e.t.Fatalf("register %s: %d %v", req.ID, status, out)
	}
	if cl, _ := out["client"].(map[string]any); cl["secret_hash"] != nil {
		e.t.Fatalf("the registration answer shows the secret hash: %v", out)
	}
	if secret, _ := out["client_secret"].(string); secret != "" {
		e.secrets[req.ID] = secret
	}
}

// chain registers the agents of human → A → B → C → D, each allowed to hand its tokens to the next.
func (e *env) chain() {
	scopes := []string{"invoices.read", "invoices.write"}
	res := []string{agentB, agentC, agentD, tools}
	e.register(issuer.ClientRequest{ID: agentA, Scopes: scopes, Resources: res, Actors: []string{agentB}})
	e.register(issuer.ClientRequest{ID: agentB, Scopes: scopes, Resources: res, Actors: []string{agentC}})
	e.register(issuer.ClientRequest{ID: agentC, Scopes: scopes, Resources: res, Actors: []string{agentD}, MaxDelegationDepth: 6})
	e.register(issuer.ClientRequest{ID: agentD, Scopes: scopes, Resources: res, MaxDelegationDepth: 6})
	e.register(issuer.ClientRequest{ID: rs, Scopes: []string{"none"}, Resources: []string{tools}, Introspection: true})
}

// session opens a human session for agent A and returns its token and root sid.
func (e *env) session() (token, sid string) {
	e.t.Helper()
	status, out := e.adminJSON(http.MethodPost, issuer.PathSessions, issuer.SessionRequest{
		User: issuer.Principal{Issuer: idp, Subject: "u-88213"}, Agent: agentA,
		Scopes: []string{"invoices.read", "invoices.write"}, Resources: []string{agentB, agentC, agentD, tools},
		ACR: "phr", AuthTime: time.Now().Unix()})
	if status != http.StatusCreated {
		e.t.Fatalf("open session: %d %v", status, out)
	}
	tok := out["token"].(map[string]any)["access_token"].(string)
	return tok, out["session"].(map[string]any)["sid"].(string)
}

// basic authenticates a request as client id with its secret (RFC 6749 §2.3.1 form-encoding).
func (e *env) basic(id string) func(*http.Request) {
	secret := e.secrets[id]
	return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
}

// token posts a token request.
func (e *env) token(form url.Values, edits ...func(*http.Request)) (int, map[string]any) {
	e.t.Helper()
	return e.do(http.MethodPost, issuer.PathToken, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()),
		func(r *http.Request) {
			for _, edit := range edits {
				edit(r)
			}
		})
}

// exchange asks for a delegated token: caller exchanges subject for resource with scope.
func (e *env) exchange(caller, subject, resource, scope string, edits ...func(*http.Request)) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{"grant_type": {issuer.GrantTokenExchange}, "subject_token": {subject},
		"subject_token_type": {issuer.TokenTypeAccessToken}, "resource": {resource}, "scope": {scope}}
	return e.token(form, append([]func(*http.Request){e.basic(caller)}, edits...)...)
}

// mustExchange exchanges and fails the test unless it worked.
func (e *env) mustExchange(caller, subject, resource, scope string, edits ...func(*http.Request)) string {
	e.t.Helper()
	status, out := e.exchange(caller, subject, resource, scope, edits...)
	if status != http.StatusOK {
		e.t.Fatalf("exchange by %s: %d %v", caller, status, out)
	}
	return out["access_token"].(string)
}

// introspect asks whether token is active, as client id.
func (e *env) introspect(as, token string) map[string]any {
	e.t.Helper()
	status, out := e.do(http.MethodPost, issuer.PathIntrospect, "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"token": {token}}.Encode()), e.basic(as))
	if status != http.StatusOK {
		e.t.Fatalf("introspect: %d %v", status, out)
	}
	return out
}

// claims decodes a token's payload without verifying it.
func claims(t *testing.T, token string) issuer.Claims {
	t.Helper()
	_, payload, err := keys.Decode(token)
	if err != nil {
		t.Fatal(err)
	}
	var c issuer.Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// dpopProof signs a DPoP proof for the token endpoint with k.
func (e *env) dpopProof(k *keys.Key, mutate func(map[string]any)) string {
	e.t.Helper()
	c := map[string]any{"jti": fmt.Sprintf("p-%d", time.Now().UnixNano()), "htm": "POST", "htu": e.url + issuer.PathToken,
		"iat": time.Now().Unix()}
	if mutate != nil {
		mutate(c)
	}
	payload, _ := json.Marshal(c)
	proof, err := keys.SignWithJWK(k, payload, keys.TypeDPoP)
	if err != nil {
		e.t.Fatal(err)
	}
	return proof
}

func withDPoP(proof string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("DPoP", proof) }
}

func mustKey(t *testing.T, alg keys.Algorithm) *keys.Key {
	t.Helper()
	k, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rawJSON keeps already-encoded JSON as it is inside a value given to json.Marshal.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// assertion signs an RFC 7523 client assertion for id with k.
func (e *env) assertion(t *testing.T, k *keys.Key, id, jti string, mutate func(map[string]any)) string {
	t.Helper()
	now := time.Now()
	c := map[string]any{"iss": id, "sub": id, "aud": e.url + issuer.PathToken, "jti": jti, "iat": now.Unix(),
		"exp": now.Add(2 * time.Minute).Unix()}
	if mutate != nil {
		mutate(c)
	}
	payload, _ := json.Marshal(c)
	s, err := keys.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(payload, "JWT")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// post sends a form and drains the answer, for benchmarks: no decoding, no test helpers on the hot path.
func (e *env) post(path, form string, edit func(*http.Request)) int {
	req, err := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(form))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	edit(req)
	resp, err := e.http.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
