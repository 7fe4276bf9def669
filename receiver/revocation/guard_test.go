package revocation_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/receiver/revocation"
)

const (
	guardIssuer   = "https://auth.example.net"
	guardAudience = "https://tools.example.net/mcp/invoices"
	guardAgentA   = "spiffe://prod.example.net/tenant/acme/agent/assistant"
	guardAgentB   = "spiffe://prod.example.net/tenant/acme/agent/invoice-bot"
)

// guardFixture is a Guard over a real key ring and index, behind a loopback HTTP server whose handler answers
// with what the guard put in the request context.
type guardFixture struct {
	ring  *keys.Ring
	index *revocation.Index
	guard *revocation.Guard
	srv   *httptest.Server
}

// seen is what the fixture's protected handler answers.
type seen struct {
	JTI      string `json:"jti"`
	Degraded bool   `json:"degraded"`
}

func newGuardFixture(t testing.TB, edit func(*revocation.GuardConfig)) *guardFixture {
	t.Helper()
	ring, err := keys.NewRing(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	f := &guardFixture{ring: ring, index: revocation.NewIndex()}
	f.index.SetReady()
	cfg := revocation.GuardConfig{Issuer: guardIssuer, Audiences: []string{"https://other.example", guardAudience},
		Keys: ring, Index: f.index}
	if edit != nil {
		edit(&cfg)
	}
	if f.guard, err = revocation.NewGuard(cfg); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.guard.Middleware(http.HandlerFunc(seenHandler)))
	t.Cleanup(f.srv.Close)
	return f
}

// seenHandler answers with the jti and degraded state the guard stored.
func seenHandler(w http.ResponseWriter, r *http.Request) {
	c, ok := revocation.ClaimsFrom(r.Context())
	if !ok {
		http.Error(w, "no claims", http.StatusInternalServerError)
		return
	}
	_ = json.NewEncoder(w).Encode(seen{JTI: c.JTI, Degraded: revocation.Degraded(r.Context())})
}

// claims are the claims of a delegated depth-2 token as the issuer mints them (spec/agent-auth.md §2.5).
func guardClaims() map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"iss": guardIssuer, "sub": "u-88213", "aud": guardAudience, "client_id": guardAgentB,
		"act":   map[string]any{"sub": guardAgentB, "act": map[string]any{"sub": guardAgentA}},
		"scope": "invoices.read", "sid": "s_B", "tenant": "acme",
		"dlg": map[string]any{"depth": 2, "max_depth": 3, "path": []string{"s_root", "s_A", "s_B"}, "parent_jti": "t_1"},
		"iat": now, "exp": now + 300, "jti": "t_" + randomID(),
	}
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// mint signs claims (after edit) as an access token of the fixture's ring.
func (f *guardFixture) mint(t testing.TB, edit func(map[string]any)) (token, jti string) {
	t.Helper()
	c := guardClaims()
	if edit != nil {
		edit(c)
	}
	jti, _ = c["jti"].(string)
	return signClaims(t, f.ring, c, keys.TypeAccessToken), jti
}

func signClaims(t testing.TB, ring *keys.Ring, c map[string]any, typ string) string {
	t.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ring.Sign(payload, typ)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// answer is a response of the fixture's server.
type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) code(t *testing.T) string {
	t.Helper()
	var b struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &b); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	return b.Error
}

func (a answer) seen(t *testing.T) seen {
	t.Helper()
	var s seen
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &s) != nil {
		t.Fatalf("want 200 with claims, got %d %s (WWW-Authenticate %q)", a.status, a.body, a.header.Get("WWW-Authenticate"))
	}
	return s
}

// call sends method to path on the fixture's server with headers in pairs.
func (f *guardFixture) call(t testing.TB, method, path string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// tamper replaces the payload of a signed token, keeping its header and signature.
func tamper(t *testing.T, token string, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	payload, _ := json.Marshal(c)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
}

func TestGuardRefusesEachValidationStep(t *testing.T) {
	f := newGuardFixture(t, nil)
	other, err := keys.NewRing(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	edDSA, err := keys.NewRing(keys.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	onlyES := newGuardFixture(t, func(c *revocation.GuardConfig) {
		c.Keys, c.Algorithms = keys.StaticKeys(keys.NewJWKS(f.ring.JWKS().Keys()...)), []keys.Algorithm{keys.ES256}
	})
	good, _ := f.mint(t, nil)
	invalid := func(desc string) string {
		return `Bearer error="invalid_token", error_description="` + desc + `"`
	}
	cases := []struct {
		name      string
		fixture   *guardFixture
		path      string
		header    []string
		status    int
		code      string
		challenge string
	}{
		{name: "accepts a valid bearer token", header: []string{"Authorization", "Bearer " + good}, status: 200},
		{name: "accepts the scheme in any case", header: []string{"Authorization", "bearer " + good}, status: 200},
		{name: "refuses a request without a token with a challenge and no error code",
			status: 401, challenge: `Bearer, DPoP algs="ES256 EdDSA"`},
		{name: "refuses another scheme like a request without a token",
			header: []string{"Authorization", "Basic dXNlcjpwYXNz"}, status: 401, challenge: `Bearer, DPoP algs="ES256 EdDSA"`},
		{name: "refuses a token in the query", path: "/r?access_token=" + good, status: 400, code: "invalid_request",
			challenge: `Bearer error="invalid_request", error_description="send the access token in the Authorization header, not in the query"`},
		{name: "refuses a token in the query even with a header", path: "/r?access_token=x",
			header: []string{"Authorization", "Bearer " + good}, status: 400, code: "invalid_request"},
		{name: "refuses two Authorization headers", header: []string{"Authorization", "Bearer " + good, "Authorization", "Bearer " + good},
			status: 400, code: "invalid_request"},
		{name: "refuses a header with an empty token", header: []string{"Authorization", "Bearer "}, status: 400, code: "invalid_request"},
		{name: "refuses a token that is not a JWS", header: []string{"Authorization", "Bearer abc"}, status: 401,
			code: "invalid_token", challenge: invalid("the token is not a signed JWT")},
		{name: "refuses a token with typ JWT", header: []string{"Authorization", "Bearer " + signClaims(t, f.ring, guardClaims(), "JWT")},
			status: 401, code: "invalid_token", challenge: invalid("the token is not an access token (typ at+jwt)")},
		{name: "refuses a SET signed by the same key", header: []string{"Authorization", "Bearer " + signClaims(t, f.ring, guardClaims(), keys.TypeSET)},
			status: 401, code: "invalid_token", challenge: invalid("the token is not an access token (typ at+jwt)")},
		{name: "refuses an algorithm outside the allow-list", fixture: onlyES,
			header: []string{"Authorization", "Bearer " + signClaims(t, edDSA, guardClaims(), keys.TypeAccessToken)},
			status: 401, code: "invalid_token", challenge: invalid("the token's signing algorithm is not allowed")},
		{name: "refuses a token signed with an unknown kid",
			header: []string{"Authorization", "Bearer " + signClaims(t, other, guardClaims(), keys.TypeAccessToken)},
			status: 401, code: "invalid_token", challenge: invalid("the token's signing key is unknown")},
		{name: "refuses a token whose signature does not verify",
			header: []string{"Authorization", "Bearer " + tamper(t, good, func(c map[string]any) { c["scope"] = "invoices.write" })},
			status: 401, code: "invalid_token", challenge: invalid("the token's signature is invalid")},
		{name: "refuses a token from another issuer",
			header: []string{"Authorization", "Bearer " + mintWith(t, f, "iss", "https://evil.example")},
			status: 401, code: "invalid_token", challenge: invalid("the token is from another issuer")},
		{name: "refuses a token for another audience",
			header: []string{"Authorization", "Bearer " + mintWith(t, f, "aud", []string{"https://a.example", "https://b.example"})},
			status: 401, code: "invalid_token", challenge: invalid("the token is for another audience")},
		{name: "accepts a token whose aud array names this resource",
			header: []string{"Authorization", "Bearer " + mintWith(t, f, "aud", []string{"https://a.example", guardAudience})}, status: 200},
		{name: "refuses an expired token",
			header: []string{"Authorization", "Bearer " + mintWith(t, f, "exp", time.Now().Add(-2*time.Minute).Unix())},
			status: 401, code: "invalid_token", challenge: invalid("the token has expired")},
		{name: "accepts a token expired within the skew",
			header: []string{"Authorization", "Bearer " + mintWith(t, f, "exp", time.Now().Add(-30*time.Second).Unix())}, status: 200},
		{name: "refuses a token whose nbf is in the future",
			header: []string{"Authorization", "Bearer " + mintWith(t, f, "nbf", time.Now().Add(2*time.Minute).Unix())},
			status: 401, code: "invalid_token", challenge: invalid("the token is not valid yet")},
		{name: "refuses a token without jti", header: []string{"Authorization", "Bearer " + mintWith(t, f, "jti", nil)},
			status: 401, code: "invalid_token", challenge: invalid("the token lacks jti, iat, exp, sub or client_id")},
		{name: "refuses a token bound by a confirmation method it cannot check",
			header: []string{"Authorization", "Bearer " + mintWith(t, f, "cnf", map[string]any{"x5t#S256": "abc"})},
			status: 401, code: "invalid_token", challenge: invalid("the token's confirmation method is not supported")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fx := tc.fixture
			if fx == nil {
				fx = f
			}
			path := tc.path
			if path == "" {
				path = "/r"
			}
			a := fx.call(t, http.MethodGet, path, tc.header...)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", a.status, tc.status, a.body)
			}
			if tc.status == 200 {
				return
			}
			if got := a.code(t); got != tc.code {
				t.Errorf("error %q, want %q", got, tc.code)
			}
			if tc.challenge != "" && a.header.Get("WWW-Authenticate") != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", a.header.Get("WWW-Authenticate"), tc.challenge)
			}
			if strings.Contains(a.body, good[:40]) || strings.Contains(a.header.Get("WWW-Authenticate"), good[:40]) {
				t.Error("the answer echoes the token")
			}
		})
	}
}

func mintWith(t *testing.T, f *guardFixture, claim string, v any) string {
	t.Helper()
	tok, _ := f.mint(t, func(c map[string]any) {
		if v == nil {
			delete(c, claim)
			return
		}
		c[claim] = v
	})
	return tok
}

func TestNewGuardReportsEveryMissingField(t *testing.T) {
	_, err := revocation.NewGuard(revocation.GuardConfig{Skew: -time.Second, PublicURL: "ftp://x"})
	if err == nil {
		t.Fatal("an empty config was accepted")
	}
	for _, field := range []string{"Issuer", "Audiences", "Keys", "Index", "Skew", "PublicURL"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("the error does not name %s: %v", field, err)
		}
	}
	ring, _ := keys.NewRing(keys.ES256)
	_, err = revocation.NewGuard(revocation.GuardConfig{Issuer: guardIssuer, Audiences: []string{guardAudience},
		Keys: ring, Index: revocation.NewIndex(), Algorithms: []keys.Algorithm{"HS256"}})
	if err == nil || !strings.Contains(err.Error(), "Algorithms") {
		t.Errorf("HS256 in the allow-list: %v", err)
	}
}

func TestGuardAuthorizeReturnsClaimsAndKid(t *testing.T) {
	f := newGuardFixture(t, nil)
	tok, jti := f.mint(t, nil)
	req := httptest.NewRequest(http.MethodGet, "http://rs.example/r", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	c, kid, err := f.guard.Authorize(req)
	if err != nil {
		t.Fatal(err)
	}
	if c.JTI != jti || kid != f.ring.Active().ID() {
		t.Errorf("jti %q kid %q, want %q %q", c.JTI, kid, jti, f.ring.Active().ID())
	}
	if got := c.Actors(); len(got) != 2 || got[1] != guardAgentA {
		t.Errorf("actors %v", got)
	}
	req.Header.Del("Authorization")
	_, _, err = f.guard.Authorize(req)
	var d *revocation.Denial
	if !errors.As(err, &d) || d.Status != http.StatusUnauthorized || d.Code != "" {
		t.Errorf("without a token: %v", err)
	}
}

// TestGuardEcho runs the echo middleware with an error handler that renders protocol errors as internal/server's
// does.
func TestGuardEcho(t *testing.T) {
	f := newGuardFixture(t, nil)
	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		var pe interface {
			HTTPStatus() int
			HTTPHeader() http.Header
			HTTPBody() any
		}
		if !errors.As(err, &pe) {
			_ = c.NoContent(http.StatusInternalServerError)
			return
		}
		for k, vs := range pe.HTTPHeader() {
			c.Response().Header()[k] = vs
		}
		_ = c.JSON(pe.HTTPStatus(), pe.HTTPBody())
	}
	e.GET("/r", func(c echo.Context) error {
		claims, ok := revocation.ClaimsFrom(c.Request().Context())
		if !ok {
			return errors.New("no claims")
		}
		return c.JSON(http.StatusOK, seen{JTI: claims.JTI})
	}, f.guard.Echo())
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	ef := &guardFixture{ring: f.ring, index: f.index, guard: f.guard, srv: srv}

	tok, jti := f.mint(t, nil)
	if got := ef.call(t, http.MethodGet, "/r", "Authorization", "Bearer "+tok).seen(t); got.JTI != jti {
		t.Errorf("jti %q, want %q", got.JTI, jti)
	}
	applyOp(t, f.index, revocation.Op{Kind: revocation.OpRevokeJTI, JTI: jti})
	a := ef.call(t, http.MethodGet, "/r", "Authorization", "Bearer "+tok)
	if a.status != 401 || a.header.Get("WWW-Authenticate") != `Bearer error="invalid_token", error_description="token revoked"` {
		t.Errorf("revoked: %d %q %s", a.status, a.header.Get("WWW-Authenticate"), a.body)
	}
}

// applyOp applies op with a fresh id and the time now when it has none.
func applyOp(t testing.TB, ix *revocation.Index, op revocation.Op) {
	t.Helper()
	if op.ID == "" {
		op.ID = "op_" + randomID()
	}
	if op.At.IsZero() {
		op.At = time.Now()
	}
	if err := ix.Apply(op); err != nil {
		t.Fatal(err)
	}
}
