package keys_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ssfd/ssfd/internal/keys"
)

const (
	typeDPoP     = "dpop+jwt"
	dpopPayload  = `{"jti":"-BwC3ESc6acc2lTc","htm":"POST","htu":"https://as.example.net/token","iat":1767225600}`
	rfc7638Print = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)

// dpopAlgs is what a DPoP-accepting server allows in these tests.
var dpopAlgs = []keys.Algorithm{keys.ES256, keys.EdDSA}

// rawPrivate returns the crypto private key of k through its JWK.
func rawPrivate(tb testing.TB, k *keys.Key) any {
	tb.Helper()
	raw, err := k.MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		tb.Fatal(err)
	}
	return jwk.Key
}

// joseSign signs payload with go-jose as a client library would: embed puts the public key in the header as
// "jwk", kid puts k's kid there instead, typ "" leaves typ out.
func joseSign(tb testing.TB, k *keys.Key, payload, typ string, embed, kid bool) string {
	tb.Helper()
	opts := &jose.SignerOptions{EmbedJWK: embed}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signingKey := rawPrivate(tb, k)
	if kid {
		signingKey = jose.JSONWebKey{Key: signingKey, KeyID: k.ID()}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm()), Key: signingKey}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	obj, err := s.Sign([]byte(payload))
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// proof returns a DPoP proof (RFC 9449 §4.2) signed by k with its public key embedded.
func proof(tb testing.TB, k *keys.Key) string {
	tb.Helper()
	return joseSign(tb, k, dpopPayload, typeDPoP, true, false)
}

// pubJWK returns k's public JWK as a header value, without the members in drop.
func pubJWK(tb testing.TB, k *keys.Key, drop ...string) map[string]any {
	tb.Helper()
	raw, err := k.PublicJWK()
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatal(err)
	}
	for _, d := range drop {
		delete(m, d)
	}
	return m
}

// signRaw signs any header with signer's private key by hand, so that a test controls every header member and
// the signature is still genuine.
func signRaw(tb testing.TB, header map[string]any, payload string, signer *keys.Key) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString([]byte(payload))
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch priv := rawPrivate(tb, signer).(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
		if err != nil {
			tb.Fatal(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case ed25519.PrivateKey:
		sig = ed25519.Sign(priv, []byte(input))
	case *rsa.PrivateKey:
		if sig, err = rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, digest[:]); err != nil {
			tb.Fatal(err)
		}
	default:
		tb.Fatalf("cannot sign with %T", priv)
	}
	return input + "." + enc.EncodeToString(sig)
}

func TestVerifyEmbeddedAcceptsDPoPProofs(t *testing.T) {
	for _, alg := range dpopAlgs {
		t.Run(string(alg), func(t *testing.T) {
			k := testKeys()[alg]
			tok := proof(t, k)
			if h, _, _ := keys.Decode(tok); !strings.Contains(string(h), `"jwk":`) || strings.Contains(string(h), `"kid"`) {
				t.Fatalf("not a DPoP-shaped proof: %s", h)
			}
			got, key, err := keys.VerifyEmbedded(tok, typeDPoP, dpopAlgs)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != dpopPayload {
				t.Fatalf("payload %s", got)
			}
			if key.IsPrivate() || key.Algorithm() != alg || key.Thumbprint() != k.Thumbprint() || key.ID() != k.Thumbprint() {
				t.Fatalf("key: private %v alg %s thumbprint %s kid %s, want %s", key.IsPrivate(), key.Algorithm(), key.Thumbprint(), key.ID(), k.Thumbprint())
			}
		})
	}
	// typ is compared as Verify compares it (RFC 7515 §4.1.9).
	tok := joseSign(t, testKeys()[keys.ES256], dpopPayload, "application/DPoP+JWT", true, false)
	if _, _, err := keys.VerifyEmbedded(tok, typeDPoP, dpopAlgs); err != nil {
		t.Fatalf("an application/ prefix and another case must be accepted: %v", err)
	}
}

func TestVerifyEmbeddedRefusesWhatMustNotPass(t *testing.T) {
	es, ed, rs := testKeys()[keys.ES256], testKeys()[keys.EdDSA], testKeys()[keys.RS256]
	other, err := keys.Generate(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	good := proof(t, es)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"htm":"GET"}`)) + "." + parts[2]
	privJWK, err := es.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	header := func(alg string, jwk any, extra ...any) map[string]any {
		h := map[string]any{"alg": alg, "typ": typeDPoP}
		if jwk != nil {
			h["jwk"] = jwk
		}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i].(string)] = extra[i+1]
		}
		return h
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallJWK, _ := json.Marshal(jose.JSONWebKey{Key: &small.PublicKey})

	// Two signatures in the JSON serialization.
	multi, err := jose.NewMultiSigner([]jose.SigningKey{
		{Algorithm: jose.ES256, Key: rawPrivate(t, es)},
		{Algorithm: jose.EdDSA, Key: rawPrivate(t, ed)},
	}, (&jose.SignerOptions{EmbedJWK: true}).WithType(typeDPoP))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := multi.Sign([]byte(dpopPayload))
	if err != nil {
		t.Fatal(err)
	}
	twoSignatures := obj.FullSerialize()

	cases := []struct {
		name  string
		token string
		algs  []keys.Algorithm
		want  error
	}{
		{"refuses a token that is not a compact JWS", "not.a.jws.at.all", dpopAlgs, keys.ErrMalformed},
		{"refuses the JSON serialization with two signatures", twoSignatures, dpopAlgs, keys.ErrMalformed},
		{"refuses a header that is not JSON", "e30x." + parts[1] + "." + parts[2], dpopAlgs, keys.ErrMalformed},
		{"refuses a missing jwk", joseSign(t, es, dpopPayload, typeDPoP, false, true), dpopAlgs, keys.ErrMissingJWK},
		{"refuses a null jwk", signRaw(t, header("ES256", nil, "jwk", nil), dpopPayload, es), dpopAlgs, keys.ErrMissingJWK},
		{"refuses a private jwk", signRaw(t, header("ES256", json.RawMessage(privJWK)), dpopPayload, es), dpopAlgs, keys.ErrInvalidKey},
		{"refuses a symmetric jwk", signRaw(t, header("ES256", map[string]any{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}), dpopPayload, es), dpopAlgs, keys.ErrInvalidKey},
		{"refuses a jwk that is not an object", signRaw(t, header("ES256", "key"), dpopPayload, es), dpopAlgs, keys.ErrInvalidKey},
		{"refuses a jwk of an unknown key type", signRaw(t, header("ES256", map[string]any{"kty": "XYZ", "x": "AA"}), dpopPayload, es), dpopAlgs, keys.ErrInvalidKey},
		{"refuses an RSA jwk under 2048 bits", signRaw(t, header("RS256", json.RawMessage(smallJWK)), dpopPayload, rs), []keys.Algorithm{keys.RS256}, keys.ErrInvalidKey},
		{"refuses a wrong typ", joseSign(t, es, dpopPayload, keys.TypeAccessToken, true, false), dpopAlgs, keys.ErrType},
		{"refuses a missing typ", joseSign(t, es, dpopPayload, "", true, false), dpopAlgs, keys.ErrType},
		{"refuses a typ that is not a string", signRaw(t, header("ES256", pubJWK(t, es), "typ", 1), dpopPayload, es), dpopAlgs, keys.ErrType},
		{"refuses RS256 when only ES256 and EdDSA are allowed", proof(t, rs), dpopAlgs, keys.ErrAlgorithmNotAllowed},
		{"refuses alg none", forge(header("none", pubJWK(t, es)), nil), dpopAlgs, keys.ErrAlgorithmNotAllowed},
		{"refuses HS256 even on the allow-list", forge(header("HS256", pubJWK(t, es)), []byte("x")), []keys.Algorithm{"HS256", keys.ES256}, keys.ErrAlgorithmNotAllowed},
		{"refuses everything with an empty allow-list", good, nil, keys.ErrAlgorithmNotAllowed},
		{"refuses an Ed25519 jwk under an ES256 header", signRaw(t, header("ES256", pubJWK(t, ed, "alg")), dpopPayload, es), dpopAlgs, keys.ErrAlgorithmMismatch},
		{"refuses an RSA jwk under an EdDSA header", signRaw(t, header("EdDSA", pubJWK(t, rs, "alg")), dpopPayload, ed), dpopAlgs, keys.ErrAlgorithmMismatch},
		{"refuses a jwk whose alg member contradicts the header", signRaw(t, header("ES256", map[string]any{"kty": "EC", "crv": "P-256", "alg": "EdDSA", "x": pubJWK(t, es)["x"], "y": pubJWK(t, es)["y"]}), dpopPayload, es), dpopAlgs, keys.ErrAlgorithmMismatch},
		{"refuses a tampered payload", tampered, dpopAlgs, keys.ErrSignature},
		{"refuses a proof signed by another key than the embedded one", signRaw(t, header("ES256", pubJWK(t, es)), dpopPayload, other), dpopAlgs, keys.ErrSignature},
		{"refuses an unknown critical header", signRaw(t, header("ES256", pubJWK(t, es), "crit", []string{"x-unknown"}, "x-unknown", 1), dpopPayload, es), dpopAlgs, keys.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			payload, key, err := keys.VerifyEmbedded(tc.token, typeDPoP, tc.algs)
			t.Log(err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if payload != nil || key != nil {
				t.Fatal("a refused proof returns no payload and no key")
			}
		})
	}
	// The hand signer itself is sound: the same header with the right key verifies.
	if _, _, err := keys.VerifyEmbedded(signRaw(t, header("ES256", pubJWK(t, es)), dpopPayload, es), typeDPoP, dpopAlgs); err != nil {
		t.Fatalf("a hand-signed proof: %v", err)
	}
	// The refusals of a private or mismatched jwk are not also reported as the other error.
	if _, _, err := keys.VerifyEmbedded(signRaw(t, header("ES256", json.RawMessage(privJWK)), dpopPayload, es), typeDPoP, dpopAlgs); errors.Is(err, keys.ErrAlgorithmMismatch) {
		t.Fatalf("a private jwk: %v", err)
	}
}

func TestThumbprint(t *testing.T) {
	// The example key of RFC 7638 §3.1, loaded with a kid of its own: Thumbprint ignores the kid.
	const jwk = `{"kty":"RSA","kid":"2011-04-29","e":"AQAB","alg":"RS256","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}`
	k, err := keys.ParseKey([]byte(jwk))
	if err != nil {
		t.Fatal(err)
	}
	if k.ID() != "2011-04-29" || k.Thumbprint() != rfc7638Print || k.PublicKey().Thumbprint() != rfc7638Print {
		t.Fatalf("kid %s, thumbprint %s, want %s", k.ID(), k.Thumbprint(), rfc7638Print)
	}
	set, err := keys.ParseJWKS([]byte(`{"keys":[` + jwk + `]}`))
	if err != nil || set.Len() != 1 {
		t.Fatalf("JWKS: %v", err)
	}
	if got, _ := set.Key("2011-04-29"); got.Thumbprint() != rfc7638Print {
		t.Fatalf("a JWKS key's thumbprint: %s", got.Thumbprint())
	}
	// Generated keys: the kid is the thumbprint, and it is the one go-jose computes. Read concurrently under -race.
	var wg sync.WaitGroup
	for alg, k := range testKeys() {
		var ref jose.JSONWebKey
		raw, _ := k.PublicJWK()
		if err := ref.UnmarshalJSON(raw); err != nil {
			t.Fatal(err)
		}
		tp, err := ref.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		want := base64.RawURLEncoding.EncodeToString(tp)
		for range 4 {
			wg.Go(func() {
				if k.Thumbprint() != want || k.ID() != want {
					t.Errorf("%s: thumbprint %s kid %s, go-jose says %s", alg, k.Thumbprint(), k.ID(), want)
				}
			})
		}
	}
	wg.Wait()
}

func TestJWKSLen(t *testing.T) {
	if n := keys.NewJWKS().Len(); n != 0 {
		t.Fatalf("empty set: %d", n)
	}
	es := testKeys()[keys.ES256]
	if n := keys.NewJWKS(es, es, testKeys()[keys.EdDSA]).Len(); n != 2 {
		t.Fatalf("duplicates are skipped: %d", n)
	}
	set, err := keys.ParseJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"sym"}]}`))
	if err != nil || set.Len() != 0 {
		t.Fatalf("unusable keys are not counted: %d %v", set.Len(), err)
	}
}

const assertionPayload = `{"iss":"client-1","sub":"client-1","aud":"https://as.example.net/token","jti":"j1","exp":1767225900}`

func TestWithTypesAcceptsClientAssertionTypes(t *testing.T) {
	es := testKeys()[keys.ES256]
	src := keys.StaticKeys(keys.NewJWKS(es))
	v, err := keys.NewVerifier(src, keys.WithTypes("", "JWT"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	accepted := map[string]string{
		"no typ":               joseSign(t, es, assertionPayload, "", false, true),
		"typ JWT":              joseSign(t, es, assertionPayload, "JWT", false, true),
		"typ application/jwt":  joseSign(t, es, assertionPayload, "application/jwt", false, true),
		"typ jwt in lowercase": joseSign(t, es, assertionPayload, "jwt", false, true),
	}
	for name, tok := range accepted {
		if got, h, err := v.Verify(ctx, tok); err != nil || string(got) != assertionPayload || h.KeyID != es.ID() {
			t.Errorf("%s: %v", name, err)
		}
	}
	refused := map[string]string{
		"typ secevent+jwt": joseSign(t, es, assertionPayload, keys.TypeSET, false, true),
		"an empty typ":     signRaw(t, map[string]any{"alg": "ES256", "kid": es.ID(), "typ": ""}, assertionPayload, es),
		"a numeric typ":    signRaw(t, map[string]any{"alg": "ES256", "kid": es.ID(), "typ": 1}, assertionPayload, es),
	}
	for name, tok := range refused {
		if _, _, err := v.Verify(ctx, tok); !errors.Is(err, keys.ErrType) {
			t.Errorf("%s: err = %v, want ErrType", name, err)
		}
	}
	// Without "" in the list, typ stays required.
	strict, err := keys.NewVerifier(src, keys.WithTypes("JWT", keys.TypeSET))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := strict.Verify(ctx, accepted["no typ"]); !errors.Is(err, keys.ErrType) {
		t.Fatalf("a missing typ without \"\" in the list: %v", err)
	}
	for _, tok := range []string{accepted["typ JWT"], refused["typ secevent+jwt"]} {
		if _, _, err := strict.Verify(ctx, tok); err != nil {
			t.Fatalf("either listed type: %v", err)
		}
	}
	// WithType keeps requiring exactly one typ, also after WithTypes.
	one, err := keys.NewVerifier(src, keys.WithTypes(""), keys.WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := one.Verify(ctx, accepted["no typ"]); !errors.Is(err, keys.ErrType) {
		t.Fatalf("WithType requires its typ: %v", err)
	}
	if _, err := keys.NewVerifier(src, keys.WithTypes()); err == nil {
		t.Fatal("an empty list of types must be refused")
	}
}

func TestWithDefaultKeyVerifiesTokensWithoutKid(t *testing.T) {
	es, rs := testKeys()[keys.ES256], testKeys()[keys.RS256]
	other, err := keys.Generate(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	noKid := joseSign(t, es, assertionPayload, "JWT", false, false)
	withKid := joseSign(t, es, assertionPayload, "JWT", false, true)

	plain, err := keys.NewVerifier(keys.StaticKeys(keys.NewJWKS()), keys.WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := plain.Verify(ctx, noKid); !errors.Is(err, keys.ErrMissingKeyID) {
		t.Fatalf("without WithDefaultKey a missing kid is refused: %v", err)
	}

	v, err := keys.NewVerifier(keys.StaticKeys(keys.NewJWKS()), keys.WithType("JWT"), keys.WithDefaultKey(es))
	if err != nil {
		t.Fatal(err)
	}
	got, h, err := v.Verify(ctx, noKid)
	if err != nil || string(got) != assertionPayload || h.KeyID != "" {
		t.Fatalf("no kid, default key: %v %+v", err, h)
	}
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"a kid is looked up in the key source, not replaced by the default key", withKid, keys.ErrUnknownKey},
		{"a token without kid signed by another key", joseSign(t, other, assertionPayload, "JWT", false, false), keys.ErrSignature},
		{"a token without kid whose alg the default key is not for", joseSign(t, rs, assertionPayload, "JWT", false, false), keys.ErrAlgorithmMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := v.Verify(ctx, tc.token); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// A default key loaded without alg from a JWKS may verify what its type allows (RSA: RS256 and PS256).
	set, err := keys.ParseJWKS([]byte(`{"keys":[` + string(mustPublicJWKWithoutAlg(t, rs)) + `]}`))
	if err != nil || set.Len() != 1 {
		t.Fatalf("JWKS: %v", err)
	}
	vr, err := keys.NewVerifier(keys.StaticKeys(keys.NewJWKS()), keys.WithType("JWT"), keys.WithDefaultKey(set.Keys()[0]))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := vr.Verify(ctx, joseSign(t, rs, assertionPayload, "JWT", false, false)); err != nil {
		t.Fatalf("RS256 with an RSA default key: %v", err)
	}
	if _, err := keys.NewVerifier(keys.StaticKeys(keys.NewJWKS()), keys.WithDefaultKey(nil)); err == nil {
		t.Fatal("a nil default key must be refused")
	}
}

// mustPublicJWKWithoutAlg returns k's public JWK without its alg member.
func mustPublicJWKWithoutAlg(t *testing.T, k *keys.Key) []byte {
	t.Helper()
	raw, err := json.Marshal(pubJWK(t, k, "alg"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// FuzzVerifyEmbedded: random proofs never panic, never verify unless they carry the seeded payload, always fail
// with one of the package's errors, and never hand back a private key.
func FuzzVerifyEmbedded(f *testing.F) {
	es, ed := testKeys()[keys.ES256], testKeys()[keys.EdDSA]
	for _, k := range []*keys.Key{es, ed} {
		good := proof(f, k)
		f.Add(good)
		parts := strings.Split(good, ".")
		f.Add(parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"htm":"GET"}`)) + "." + parts[2])
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + ".." + parts[2])
		f.Add(strings.Replace(good, ".", "..", 1))
	}
	privJWK, _ := es.MarshalJSON()
	f.Add(signRaw(f, map[string]any{"alg": "ES256", "typ": typeDPoP, "jwk": json.RawMessage(privJWK)}, dpopPayload, es))
	f.Add(signRaw(f, map[string]any{"alg": "ES256", "typ": typeDPoP, "jwk": pubJWK(f, ed, "alg")}, dpopPayload, es))
	f.Add(signRaw(f, map[string]any{"alg": "ES256", "typ": typeDPoP, "kid": es.ID()}, dpopPayload, es))
	f.Add(forge(map[string]any{"alg": "none", "typ": typeDPoP, "jwk": pubJWK(f, es)}, nil))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	f.Add("..")
	sentinels := []error{keys.ErrMalformed, keys.ErrAlgorithmNotAllowed, keys.ErrType, keys.ErrMissingJWK,
		keys.ErrInvalidKey, keys.ErrAlgorithmMismatch, keys.ErrSignature}
	f.Fuzz(func(t *testing.T, token string) {
		payload, key, err := keys.VerifyEmbedded(token, typeDPoP, dpopAlgs)
		if err != nil {
			if payload != nil || key != nil {
				t.Fatal("a refused proof returned a payload or key")
			}
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("an error outside the package's sentinels: %v", err)
		}
		if string(payload) != dpopPayload {
			t.Fatalf("a forged proof verified: %q", token)
		}
		if key == nil || key.IsPrivate() || key.Thumbprint() == "" || key.ID() != key.Thumbprint() {
			t.Fatalf("bad key from a verified proof: %+v", key)
		}
	})
}
