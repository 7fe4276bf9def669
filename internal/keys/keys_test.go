package keys_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ssfd/ssfd/internal/keys"
)

// testKeys generates one key per algorithm once: RSA generation is slow under -race.
var testKeys = sync.OnceValue(func() map[keys.Algorithm]*keys.Key {
	out := map[keys.Algorithm]*keys.Key{}
	for _, alg := range keys.Algorithms() {
		k, err := keys.Generate(alg)
		if err != nil {
			panic(err)
		}
		out[alg] = k
	}
	return out
})

const payload = `{"iss":"https://tx.example.net","jti":"abc","iat":1767225600}`

func sign(t *testing.T, k *keys.Key, typ string) string {
	t.Helper()
	s, err := keys.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign([]byte(payload), typ)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func verifier(t *testing.T, ks ...*keys.Key) *keys.Verifier {
	t.Helper()
	v, err := keys.NewVerifier(keys.StaticKeys(keys.NewJWKS(ks...)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSignAndVerifyEveryAlgorithm(t *testing.T) {
	for alg, k := range testKeys() {
		t.Run(string(alg), func(t *testing.T) {
			tok := sign(t, k, keys.TypeSET)
			got, h, err := verifier(t, k).Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != payload || h.Algorithm != alg || h.KeyID != k.ID() || h.Type != keys.TypeSET {
				t.Fatalf("payload %s header %+v", got, h)
			}
		})
	}
}

// forge builds a compact JWS with any header and an HMAC signature, the way an attacker would.
func forge(header map[string]any, secret []byte) string {
	h, _ := json.Marshal(header)
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString([]byte(payload))
	if secret == nil {
		return input + "."
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + enc.EncodeToString(mac.Sum(nil))
}

func TestVerifyRefusesWhatMustNotPass(t *testing.T) {
	es, rs := testKeys()[keys.ES256], testKeys()[keys.RS256]
	pubDER, _ := x509.MarshalPKIXPublicKey(rs.Public())
	good := sign(t, es, keys.TypeSET)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"evil"}`)) + "." + parts[2]
	other, _ := keys.Generate(keys.ES256)
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"refuses a token that is not a JWS", "not.a.jws.at.all", keys.ErrMalformed},
		{"refuses a token signed with alg none", forge(map[string]any{"alg": "none", "typ": "secevent+jwt", "kid": es.ID()}, nil), keys.ErrAlgorithmNotAllowed},
		{"refuses HS256 signed with the RSA public key", forge(map[string]any{"alg": "HS256", "typ": "secevent+jwt", "kid": rs.ID()}, pubDER), keys.ErrAlgorithmNotAllowed},
		{"refuses a wrong typ", sign(t, es, keys.TypeAccessToken), keys.ErrType},
		{"refuses a missing typ", forge(map[string]any{"alg": "ES256", "kid": es.ID()}, []byte("x")), keys.ErrType},
		{"refuses a missing kid", forge(map[string]any{"alg": "ES256", "typ": "secevent+jwt"}, []byte("x")), keys.ErrMissingKeyID},
		{"refuses an unknown kid", sign(t, other, keys.TypeSET), keys.ErrUnknownKey},
		{"refuses an ES256 header over an RSA key", forge(map[string]any{"alg": "ES256", "typ": "secevent+jwt", "kid": rs.ID()}, []byte("x")), keys.ErrAlgorithmMismatch},
		{"refuses a tampered payload", tampered, keys.ErrSignature},
		{"refuses an unknown critical header", forge(map[string]any{"alg": "ES256", "typ": "secevent+jwt", "kid": es.ID(), "crit": []string{"x-unknown"}, "x-unknown": 1}, []byte("x")), keys.ErrMalformed},
	}
	v := verifier(t, es, rs)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := v.Verify(context.Background(), tc.token); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTypeComparisonFollowsRFC7515(t *testing.T) {
	es := testKeys()[keys.ES256]
	s, _ := keys.NewSigner(es)
	tok, err := s.Sign([]byte(payload), "application/SECEVENT+JWT")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := verifier(t, es).Verify(context.Background(), tok); err != nil {
		t.Fatalf("SET-02: an application/ prefix and another case must be accepted: %v", err)
	}
}

func TestAlgorithmAllowList(t *testing.T) {
	for _, bad := range []string{"none", "HS256", "HS512", "RS1", ""} {
		if _, err := keys.ParseAlgorithm(bad); !errors.Is(err, keys.ErrUnsupportedAlgorithm) {
			t.Errorf("ParseAlgorithm(%q) err = %v", bad, err)
		}
	}
	es, rs := testKeys()[keys.ES256], testKeys()[keys.RS256]
	v, err := keys.NewVerifier(keys.StaticKeys(keys.NewJWKS(es, rs)), keys.WithAlgorithms(keys.RS256))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Verify(context.Background(), sign(t, es, keys.TypeSET)); !errors.Is(err, keys.ErrAlgorithmNotAllowed) {
		t.Fatalf("ES256 outside an RS256-only allow-list: %v", err)
	}
	if _, err := keys.NewVerifier(keys.StaticKeys(keys.NewJWKS()), keys.WithAlgorithms("HS256")); err == nil {
		t.Fatal("HS256 must not enter an allow-list")
	}
}

func TestKidIsTheRFC7638Thumbprint(t *testing.T) {
	// The example key of RFC 7638 §3.1 and its thumbprint.
	const jwk = `{"kty":"RSA","e":"AQAB","alg":"RS256","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}`
	k, err := keys.ParseKey([]byte(jwk))
	if err != nil {
		t.Fatal(err)
	}
	if k.ID() != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("kid = %s", k.ID())
	}
}

func TestKeysAreChecked(t *testing.T) {
	if _, err := keys.GenerateRSA(keys.RS256, 1024); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatalf("rejects RSA key below 2048 bits: %v", err)
	}
	cases := map[string]string{
		"refuses a symmetric key":         `{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}`,
		"refuses an ES256 alg on Ed25519": `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"ES256"}`,
		"refuses garbage":                 `hello`,
		"refuses an RSA JWK without alg":  `{"kty":"RSA","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}`,
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := keys.ParseKey([]byte(doc)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestKeyFilesRoundTripWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.jwk")
	for alg, k := range testKeys() {
		if err := keys.WriteKeyFile(path, k); err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(path)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v %v", info.Mode().Perm(), err)
		}
		back, err := keys.ReadKeyFile(path)
		if err != nil || back.ID() != k.ID() || back.Algorithm() != alg || !back.IsPrivate() {
			t.Fatalf("%s round trip: %v %v", alg, back, err)
		}
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.ReadKeyFile(path); !errors.Is(err, keys.ErrInsecureFileMode) {
		t.Fatalf("a world-readable key file must be refused: %v", err)
	}
}

func TestJWKSPublishesPublicKeysOnly(t *testing.T) {
	var all []*keys.Key
	for _, k := range testKeys() {
		all = append(all, k)
	}
	data, err := json.Marshal(keys.NewJWKS(all...))
	if err != nil {
		t.Fatal(err)
	}
	for _, private := range []string{`"d":`, `"p":`, `"q":`, `"dp":`} {
		if strings.Contains(string(data), private) {
			t.Fatalf("JWKS leaks private member %s", private)
		}
	}
	parsed, err := keys.ParseJWKS(append([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"sym"},{"kty":"EC","use":"enc","kid":"e"},`), data[len(`{"keys":[`):]...))
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed.Keys()) != len(all) {
		t.Fatalf("parsed %d keys, want %d (unusable ones skipped)", len(parsed.Keys()), len(all))
	}
}

func TestRingRotationPublishesNextBeforeActiveAndRetiredAfter(t *testing.T) {
	clock := time.Unix(1767225600, 0)
	now := func() time.Time { return clock }
	r, err := keys.NewRing(keys.ES256, keys.WithRetireWindow(time.Hour), keys.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	first := r.Active()
	if n := len(r.JWKS().Keys()); n != 2 {
		t.Fatalf("active + next published, got %d", n)
	}
	var next *keys.Key
	for _, k := range r.JWKS().Keys() {
		if k.ID() != first.ID() {
			next = k
		}
	}
	if err := r.Rotate(); err != nil {
		t.Fatal(err)
	}
	if r.Active().ID() != next.ID() {
		t.Fatal("the published next key must become active")
	}
	tok, err := r.Sign([]byte(payload), keys.TypeSET)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := keys.NewVerifier(r)
	if _, h, err := v.Verify(context.Background(), tok); err != nil || h.KeyID != next.ID() {
		t.Fatalf("signed with %s: %v", h.KeyID, err)
	}
	if _, ok := r.JWKS().Key(first.ID()); !ok {
		t.Fatal("the retired key stays published inside its window")
	}
	clock = clock.Add(2 * time.Hour)
	if _, ok := r.JWKS().Key(first.ID()); ok {
		t.Fatal("the retired key disappears after its window")
	}
	path := filepath.Join(t.TempDir(), "ring.json")
	if err := keys.SaveRing(path, r); err != nil {
		t.Fatal(err)
	}
	back, err := keys.LoadRing(path, keys.WithClock(now), keys.WithRetireWindow(time.Hour))
	if err != nil || back.Active().ID() != r.Active().ID() || len(back.JWKS().Keys()) != len(r.JWKS().Keys()) {
		t.Fatalf("ring round trip: %v", err)
	}
}

func TestRemoteJWKS(t *testing.T) {
	es := testKeys()[keys.ES256]
	rotated, _ := keys.Generate(keys.ES256)
	var fetches atomic.Int32
	var serve atomic.Value
	serve.Store([]*keys.Key{es})
	fail := atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(keys.NewJWKS(serve.Load().([]*keys.Key)...))
	}))
	defer srv.Close()
	clock := time.Unix(1767225600, 0)
	r, err := keys.NewRemoteJWKS(srv.URL, keys.WithRemoteClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Key(ctx, es.ID()); err != nil || fetches.Load() != 1 {
		t.Fatalf("first lookup fetches once: %v, %d fetches", err, fetches.Load())
	}
	if _, err := r.Key(ctx, es.ID()); err != nil || fetches.Load() != 1 {
		t.Fatal("a known kid is served from the cache")
	}
	serve.Store([]*keys.Key{es, rotated})
	clock = clock.Add(2 * time.Minute)
	if _, err := r.Key(ctx, rotated.ID()); err != nil || fetches.Load() != 2 {
		t.Fatalf("refetches JWKS once on unknown kid: %v, %d fetches", err, fetches.Load())
	}
	unknown, _ := keys.Generate(keys.ES256)
	clock = clock.Add(2 * time.Minute)
	for range 5 {
		if _, err := r.Key(ctx, unknown.ID()); !errors.Is(err, keys.ErrUnknownKey) {
			t.Fatal(err)
		}
	}
	if fetches.Load() != 3 {
		t.Fatalf("rate limits refetch to once a minute: %d fetches", fetches.Load())
	}
	for range 5 {
		if _, err := r.Key(ctx, unknown.ID()); errors.Is(err, keys.ErrKeysUnavailable) {
			t.Fatalf("a kid the fetched key set lacks is not a fetch problem: %v", err)
		}
	}
	fail.Store(true)
	clock = clock.Add(2 * time.Hour)
	if _, err := r.Key(ctx, es.ID()); err != nil {
		t.Fatalf("keeps old keys when refetch fails: %v", err)
	}
	// A kid looked up while the key set cannot be fetched may exist: the error says the set is unavailable, also
	// for lookups inside the refetch interval.
	for range 3 {
		if _, err := r.Key(ctx, unknown.ID()); !errors.Is(err, keys.ErrUnknownKey) || !errors.Is(err, keys.ErrKeysUnavailable) {
			t.Fatalf("unknown kid while the JWKS is down: %v", err)
		}
	}
	fail.Store(false)
	clock = clock.Add(2 * time.Minute)
	if _, err := r.Key(ctx, unknown.ID()); err == nil || errors.Is(err, keys.ErrKeysUnavailable) {
		t.Fatalf("after a good refetch an unknown kid is plainly unknown: %v", err)
	}
}

func TestParseKeyReadsPEM(t *testing.T) {
	es, rs, ed := testKeys()[keys.ES256], testKeys()[keys.RS256], testKeys()[keys.EdDSA]
	cases := []struct {
		name  string
		block string
		der   func() ([]byte, error)
		want  keys.Algorithm
		kid   string
	}{
		{"PKCS#8 EC private key", "PRIVATE KEY", func() ([]byte, error) { return x509.MarshalPKCS8PrivateKey(privateOf(t, es)) }, keys.ES256, es.ID()},
		{"PKCS#8 Ed25519 private key", "PRIVATE KEY", func() ([]byte, error) { return x509.MarshalPKCS8PrivateKey(privateOf(t, ed)) }, keys.EdDSA, ed.ID()},
		{"PKIX RSA public key", "PUBLIC KEY", func() ([]byte, error) { return x509.MarshalPKIXPublicKey(rs.Public()) }, keys.RS256, rs.ID()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			der, err := tc.der()
			if err != nil {
				t.Fatal(err)
			}
			k, err := keys.ParseKey(pem.EncodeToMemory(&pem.Block{Type: tc.block, Bytes: der}))
			if err != nil || k.Algorithm() != tc.want || k.ID() != tc.kid {
				t.Fatalf("ParseKey = %v %v", k, err)
			}
		})
	}
	if _, err := keys.ParseKey([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatalf("an unsupported PEM block: %v", err)
	}
	der, _ := x509.MarshalPKIXPublicKey(rs.Public())
	if k, err := keys.ParseKeyAs(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), keys.PS256); err != nil || k.Algorithm() != keys.PS256 {
		t.Fatalf("ParseKeyAs PS256: %v %v", k, err)
	}
}

// privateOf returns the crypto private key of k through its JWK, as an operator's tool would.
func privateOf(t *testing.T, k *keys.Key) any {
	t.Helper()
	raw, err := k.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	return jwk.Key
}

func TestDecodeSplitsWithoutVerifying(t *testing.T) {
	tok := sign(t, testKeys()[keys.ES256], keys.TypeSET)
	h, p, err := keys.Decode(tok)
	if err != nil || !strings.Contains(string(h), `"typ":"secevent+jwt"`) || string(p) != payload {
		t.Fatalf("Decode = %s %s %v", h, p, err)
	}
	for _, bad := range []string{"a.b", "!!.e30.x", "e30.!!.x"} {
		if _, _, err := keys.Decode(bad); !errors.Is(err, keys.ErrMalformed) {
			t.Errorf("Decode(%q) = %v", bad, err)
		}
	}
}

// TestRingReplaceTakesAnotherReplicasRotation: a ring replaced by the serialized rotation of a copy signs with
// the copy's new active key, and refuses a ring of another algorithm.
func TestRingReplaceTakesAnotherReplicasRotation(t *testing.T) {
	ring, err := keys.NewRing(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	data, err := ring.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	other, err := keys.ParseRing(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Rotate(); err != nil {
		t.Fatal(err)
	}
	rotated, err := other.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	before := ring.Active().ID()
	if err := ring.Replace(rotated); err != nil {
		t.Fatal(err)
	}
	if got, want := ring.Active().ID(), other.Active().ID(); got != want || got == before {
		t.Fatalf("active key after Replace = %s, want the copy's %s (was %s)", got, want, before)
	}
	rs, err := keys.NewRing(keys.RS256)
	if err != nil {
		t.Fatal(err)
	}
	rsData, _ := rs.MarshalJSON()
	if err := ring.Replace(rsData); err == nil {
		t.Fatal("an RS256 ring replaced an ES256 ring")
	}
}

// TestSameHTU: a DPoP proof's htu matches the request URL after RFC 9449 §4.3's normalisation, at the token
// endpoint and at resource servers alike.
func TestSameHTU(t *testing.T) {
	for _, c := range []struct {
		htu, request string
		same         bool
	}{
		{"https://as.example/oauth/token", "https://as.example/oauth/token", true},
		{"https://as.example:443/oauth/token", "https://as.example/oauth/token", true},
		{"HTTPS://AS.example/oauth/token", "https://as.example/oauth/token?x=1#f", true},
		{"http://rs.example:80", "http://rs.example/", true},
		{"https://as.example:8443/oauth/token", "https://as.example/oauth/token", false},
		{"https://as.example/oauth/Token", "https://as.example/oauth/token", false},
		{"http://as.example/oauth/token", "https://as.example/oauth/token", false},
		{"/oauth/token", "https://as.example/oauth/token", false},
		{"https://as.example/oauth/token", "https://other.example/oauth/token", false},
	} {
		if got := keys.SameHTU(c.htu, c.request); got != c.same {
			t.Errorf("SameHTU(%q, %q) = %v, want %v", c.htu, c.request, got, c.same)
		}
	}
}
