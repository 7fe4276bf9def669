package revocation_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/receiver/revocation"
)

// proofFor signs a DPoP proof for token with k (RFC 9449 §4.2); edit changes its claims.
func proofFor(t testing.TB, k *keys.Key, method, htu, token string, edit func(map[string]any)) string {
	t.Helper()
	sum := sha256.Sum256([]byte(token))
	c := map[string]any{"jti": randomID(), "htm": method, "htu": htu, "iat": time.Now().Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:])}
	if edit != nil {
		edit(c)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := keys.SignWithJWK(k, payload, keys.TypeDPoP)
	if err != nil {
		t.Fatal(err)
	}
	return proof
}

// boundToken mints a token bound to k's thumbprint.
func (f *guardFixture) boundToken(t testing.TB, k *keys.Key) (token, jti string) {
	t.Helper()
	return f.mint(t, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": k.Thumbprint()} })
}

func TestGuardDPoP(t *testing.T) {
	f := newGuardFixture(t, nil)
	holder, err := keys.Generate(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	thief, err := keys.Generate(keys.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	tok, jti := f.boundToken(t, holder)
	unbound, _ := f.mint(t, nil)
	htu := f.srv.URL + "/mcp/tools"
	replayed := proofFor(t, holder, http.MethodGet, htu, tok, nil)
	if got := f.call(t, http.MethodGet, "/mcp/tools", "Authorization", "DPoP "+tok, "DPoP", replayed).seen(t); got.JTI != jti {
		t.Fatalf("jti %q, want %q", got.JTI, jti)
	}
	proof := func(edit func(map[string]any)) string { return proofFor(t, holder, http.MethodGet, htu, tok, edit) }
	dpopInvalid := func(desc string) string {
		return `DPoP algs="ES256 EdDSA", error="invalid_dpop_proof", error_description="` + desc + `"`
	}
	cases := []struct {
		name      string
		method    string
		path      string
		header    []string
		status    int
		code      string
		challenge string
	}{
		{name: "accepts a valid proof whose htu ignores the query", path: "/mcp/tools?page=2",
			header: []string{"Authorization", "DPoP " + tok, "DPoP", proof(nil)}, status: 200},
		{name: "accepts a valid proof for POST", method: http.MethodPost,
			header: []string{"Authorization", "DPoP " + tok, "DPoP", proofFor(t, holder, http.MethodPost, htu, tok, nil)}, status: 200},
		{name: "accepts an htu whose scheme differs in case",
			header: []string{"Authorization", "DPoP " + tok, "DPoP", proof(func(c map[string]any) { c["htu"] = "HTTP" + htu[len("http"):] })}, status: 200},
		{name: "refuses a proof with the wrong htm",
			header: []string{"Authorization", "DPoP " + tok, "DPoP", proof(func(c map[string]any) { c["htm"] = http.MethodPost })},
			status: 401, code: "invalid_dpop_proof", challenge: dpopInvalid("the DPoP proof's htm is not the request method")},
		{name: "refuses a proof with the wrong htu",
			header: []string{"Authorization", "DPoP " + tok, "DPoP", proof(func(c map[string]any) { c["htu"] = f.srv.URL + "/mcp/admin" })},
			status: 401, code: "invalid_dpop_proof", challenge: dpopInvalid("the DPoP proof's htu is not the request URL")},
		{name: "refuses a proof with the wrong ath",
			header: []string{"Authorization", "DPoP " + tok, "DPoP", proofFor(t, holder, http.MethodGet, htu, unbound, nil)},
			status: 401, code: "invalid_dpop_proof", challenge: dpopInvalid("the DPoP proof's ath is not the hash of the access token")},
		{name: "refuses a proof signed by another key than cnf.jkt",
			header: []string{"Authorization", "DPoP " + tok, "DPoP", proofFor(t, thief, http.MethodGet, htu, tok, nil)},
			status: 401, code: "invalid_dpop_proof", challenge: dpopInvalid("the DPoP proof's key is not the one the token is bound to")},
		{name: "refuses a proof with an old iat",
			header: []string{"Authorization", "DPoP " + tok, "DPoP", proof(func(c map[string]any) { c["iat"] = time.Now().Add(-5 * time.Minute).Unix() })},
			status: 401, code: "invalid_dpop_proof", challenge: dpopInvalid("the DPoP proof's iat is not close enough to now")},
		{name: "refuses a proof from the future",
			header: []string{"Authorization", "DPoP " + tok, "DPoP", proof(func(c map[string]any) { c["iat"] = time.Now().Add(5 * time.Minute).Unix() })},
			status: 401, code: "invalid_dpop_proof"},
		{name: "refuses a replayed proof", header: []string{"Authorization", "DPoP " + tok, "DPoP", replayed},
			status: 401, code: "invalid_dpop_proof", challenge: dpopInvalid("the DPoP proof was used before")},
		{name: "refuses a proof without ath",
			header: []string{"Authorization", "DPoP " + tok, "DPoP", proof(func(c map[string]any) { delete(c, "ath") })},
			status: 401, code: "invalid_dpop_proof", challenge: dpopInvalid("the DPoP proof needs jti, htm, htu, iat and ath")},
		{name: "refuses a proof with typ JWT", header: []string{"Authorization", "DPoP " + tok, "DPoP", signedWithType(t, holder, "JWT")},
			status: 401, code: "invalid_dpop_proof", challenge: dpopInvalid("the DPoP proof is not valid: its typ must be dpop+jwt")},
		{name: "refuses two proofs", header: []string{"Authorization", "DPoP " + tok, "DPoP", proof(nil), "DPoP", proof(nil)},
			status: 401, code: "invalid_dpop_proof", challenge: dpopInvalid("send one DPoP proof")},
		{name: "refuses the DPoP scheme without a proof", header: []string{"Authorization", "DPoP " + tok},
			status: 401, code: "invalid_dpop_proof", challenge: dpopInvalid("a DPoP proof is required")},
		{name: "refuses a bound token with the Bearer scheme", header: []string{"Authorization", "Bearer " + tok, "DPoP", proof(nil)},
			status: 401, code: "invalid_token",
			challenge: `DPoP algs="ES256 EdDSA", error="invalid_token", error_description="the token is DPoP-bound: use the DPoP scheme with a proof"`},
		{name: "refuses an unbound token with the DPoP scheme",
			header: []string{"Authorization", "DPoP " + unbound, "DPoP", proofFor(t, holder, http.MethodGet, htu, unbound, nil)},
			status: 401, code: "invalid_token",
			challenge: `Bearer error="invalid_token", error_description="the token is not DPoP-bound: use the Bearer scheme"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method, path := tc.method, tc.path
			if method == "" {
				method = http.MethodGet
			}
			if path == "" {
				path = "/mcp/tools"
			}
			a := f.call(t, method, path, tc.header...)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d (%s %q)", a.status, tc.status, a.body, a.header.Get("WWW-Authenticate"))
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
		})
	}
}

func signedWithType(t *testing.T, k *keys.Key, typ string) string {
	t.Helper()
	proof, err := keys.SignWithJWK(k, []byte(`{"jti":"x","htm":"GET","htu":"http://x/","iat":1}`), typ)
	if err != nil {
		t.Fatal(err)
	}
	return proof
}

func TestGuardDPoPUsesPublicURL(t *testing.T) {
	f := newGuardFixture(t, func(c *revocation.GuardConfig) { c.PublicURL = "https://RS.example:443/" })
	holder, _ := keys.Generate(keys.EdDSA)
	tok, _ := f.boundToken(t, holder)
	ok := proofFor(t, holder, http.MethodGet, "https://rs.example/mcp/tools#frag", tok, nil)
	f.call(t, http.MethodGet, "/mcp/tools", "Authorization", "DPoP "+tok, "DPoP", ok).seen(t)
	local := proofFor(t, holder, http.MethodGet, f.srv.URL+"/mcp/tools", tok, nil)
	if a := f.call(t, http.MethodGet, "/mcp/tools", "Authorization", "DPoP "+tok, "DPoP", local); a.status != 401 {
		t.Errorf("a proof for the server's own address passed behind PublicURL: %d", a.status)
	}
}

// sharedProofs is a ProofStore two guards share, as the replicas of ssfd's check API share their state.
type sharedProofs struct {
	mu   sync.Mutex
	seen map[string]time.Time
	down bool
}

func (s *sharedProofs) Remember(_ context.Context, key string, until time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return false, errors.New("store out of reach")
	}
	if t, ok := s.seen[key]; ok && time.Now().Before(t) {
		return false, nil
	}
	s.seen[key] = until
	return true, nil
}

// TestGuardDPoPReplayToAnotherReplicaIsRefused: two replicas of a resource server share a ProofStore; a proof
// accepted by one is refused by the other, and a store that cannot answer refuses with 503 instead of letting a
// proof through unchecked.
func TestGuardDPoPReplayToAnotherReplicaIsRefused(t *testing.T) {
	store := &sharedProofs{seen: map[string]time.Time{}}
	const public = "https://rs.example"
	a := newGuardFixture(t, func(c *revocation.GuardConfig) { c.SharedProofs, c.PublicURL = store, public })
	gb, err := revocation.NewGuard(revocation.GuardConfig{Issuer: guardIssuer, Audiences: []string{guardAudience},
		Keys: a.ring, Index: a.index, SharedProofs: store, PublicURL: public})
	if err != nil {
		t.Fatal(err)
	}
	b := &guardFixture{ring: a.ring, index: a.index, guard: gb, srv: httptest.NewServer(gb.Middleware(http.HandlerFunc(seenHandler)))}
	t.Cleanup(b.srv.Close)
	holder, err := keys.Generate(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := a.boundToken(t, holder)
	proof := proofFor(t, holder, http.MethodGet, public+"/mcp/tools", tok, nil)
	if got := a.call(t, http.MethodGet, "/mcp/tools", "Authorization", "DPoP "+tok, "DPoP", proof); got.status != http.StatusOK {
		t.Fatalf("replica a refused a fresh proof: %d %s", got.status, got.body)
	}
	got := b.call(t, http.MethodGet, "/mcp/tools", "Authorization", "DPoP "+tok, "DPoP", proof)
	if got.status != http.StatusUnauthorized || !strings.Contains(got.header.Get("WWW-Authenticate"), "was used before") {
		t.Fatalf("replica b accepted a proof replica a had seen: %d %v", got.status, got.header)
	}
	store.mu.Lock()
	store.down = true
	store.mu.Unlock()
	fresh := proofFor(t, holder, http.MethodGet, public+"/mcp/tools", tok, nil)
	if got := b.call(t, http.MethodGet, "/mcp/tools", "Authorization", "DPoP "+tok, "DPoP", fresh); got.status != http.StatusServiceUnavailable {
		t.Fatalf("with the shared store down a proof got %d, want 503", got.status)
	}
	store.mu.Lock()
	store.down = false
	store.mu.Unlock()
	if got := b.call(t, http.MethodGet, "/mcp/tools", "Authorization", "DPoP "+tok, "DPoP", fresh); got.status != http.StatusOK {
		t.Fatalf("the retry of a proof refused with 503 got %d, want 200", got.status)
	}
}
