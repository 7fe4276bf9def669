package receiver_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
)

const (
	issuer   = "https://tx.example.net"
	audience = "https://rx.example.org"
)

var now = time.Unix(1767225600, 0)

type fixture struct {
	es, rs *keys.Key
	v      *receiver.Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	es, err := keys.Generate(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := keys.Generate(keys.RS256)
	if err != nil {
		t.Fatal(err)
	}
	v, err := receiver.NewVerifier(keys.StaticKeys(keys.NewJWKS(es, rs)), issuer, []string{audience},
		receiver.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{es: es, rs: rs, v: v}
}

func claims(changes map[string]any) []byte {
	c := map[string]any{
		"iss": issuer, "jti": "j1", "iat": now.Unix(), "aud": audience,
		"sub_id": map[string]any{"format": "email", "email": "ada@example.com"},
		"events": map[string]any{string(schemas.EventSessionRevoked): map[string]any{}},
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	out, _ := json.Marshal(c)
	return out
}

func signWith(t testing.TB, k *keys.Key, typ string, payload []byte) string {
	t.Helper()
	s, err := keys.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(payload, typ)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func forgeHS256(header map[string]any, payload, secret []byte) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(header)
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + enc.EncodeToString(mac.Sum(nil))
}

func TestVerifierAnswersWithTheRFC8935Code(t *testing.T) {
	f := newFixture(t)
	other, _ := keys.Generate(keys.ES256)
	pubDER, _ := x509.MarshalPKIXPublicKey(f.rs.Public())
	valid := signWith(t, f.es, keys.TypeSET, claims(nil))
	enc := base64.RawURLEncoding
	cases := []struct {
		id, name string
		token    string
		want     schemas.ErrorCode
	}{
		{"VAL-01", "refuses what is not a JWS", "hello", schemas.ErrInvalidRequest},
		{"VAL-02", "refuses a wrong typ", signWith(t, f.es, keys.TypeAccessToken, claims(nil)), schemas.ErrInvalidRequest},
		{"VAL-03", "refuses an unknown kid", signWith(t, other, keys.TypeSET, claims(nil)), schemas.ErrInvalidKey},
		{"VAL-03", "refuses HS256 signed with the RSA public key", forgeHS256(map[string]any{"alg": "HS256", "typ": "secevent+jwt", "kid": f.rs.ID()}, claims(nil), pubDER), schemas.ErrInvalidKey},
		{"VAL-03", "refuses alg none", enc.EncodeToString([]byte(`{"alg":"none","typ":"secevent+jwt","kid":"x"}`)) + "." + enc.EncodeToString(claims(nil)) + ".", schemas.ErrInvalidKey},
		{"VAL-04", "refuses a bad signature", valid[:len(valid)-4] + "AAAA", schemas.ErrAuthenticationFailed},
		{"VAL-05", "refuses another issuer", signWith(t, f.es, keys.TypeSET, claims(map[string]any{"iss": "https://evil.example"})), schemas.ErrInvalidIssuer},
		{"VAL-06", "refuses another audience", signWith(t, f.es, keys.TypeSET, claims(map[string]any{"aud": "https://other"})), schemas.ErrInvalidAudience},
		{"VAL-07", "refuses iat in the future", signWith(t, f.es, keys.TypeSET, claims(map[string]any{"iat": now.Add(time.Hour).Unix()})), schemas.ErrInvalidRequest},
		{"VAL-07", "refuses two events", signWith(t, f.es, keys.TypeSET, claims(map[string]any{"events": map[string]any{"https://a.example/1": map[string]any{}, "https://a.example/2": map[string]any{}}})), schemas.ErrInvalidRequest},
		{"SET-06", "refuses sub", signWith(t, f.es, keys.TypeSET, claims(map[string]any{"sub": "u1"})), schemas.ErrInvalidRequest},
		{"VAL-09", "refuses a payload that breaks its type", signWith(t, f.es, keys.TypeSET, claims(map[string]any{"events": map[string]any{string(schemas.EventSessionRevoked): map[string]any{"reason_admin": "x"}}})), schemas.ErrInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.id+" "+tc.name, func(t *testing.T) {
			_, err := f.v.Verify(context.Background(), tc.token)
			var ve *receiver.VerifyError
			if !errors.As(err, &ve) || ve.Code != tc.want {
				t.Fatalf("err = %v, want code %s", err, tc.want)
			}
		})
	}
	set, err := f.v.Verify(context.Background(), valid)
	if err != nil || set.ID != "j1" || set.Event.Type != schemas.EventSessionRevoked {
		t.Fatalf("a valid SET: %+v %v", set, err)
	}
	if _, err := f.v.Verify(context.Background(), signWith(t, f.rs, keys.TypeSET, claims(map[string]any{"aud": []string{"x", audience}}))); err != nil {
		t.Fatalf("an RS256 SET with aud as an array: %v", err)
	}
}

func TestVerifierAlgorithmAllowList(t *testing.T) {
	f := newFixture(t)
	v, err := receiver.NewVerifier(keys.StaticKeys(keys.NewJWKS(f.es, f.rs)), issuer, []string{audience},
		receiver.WithAlgorithms(keys.RS256), receiver.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), signWith(t, f.es, keys.TypeSET, claims(nil)))
	var ve *receiver.VerifyError
	if !errors.As(err, &ve) || ve.Code != schemas.ErrInvalidKey || !errors.Is(err, keys.ErrAlgorithmNotAllowed) {
		t.Fatalf("ES256 under an RS256 allow-list: %v", err)
	}
}

func TestMetadataURLInsertsTheWellKnownPath(t *testing.T) {
	cases := map[string]string{
		"https://tx.example.net":               "https://tx.example.net/.well-known/ssf-configuration",
		"https://tx.example.net/":              "https://tx.example.net/.well-known/ssf-configuration",
		"https://tx.example.net/tenants/acme":  "https://tx.example.net/.well-known/ssf-configuration/tenants/acme",
		"https://tx.example.net/tenants/acme/": "https://tx.example.net/.well-known/ssf-configuration/tenants/acme",
	}
	for issuer, want := range cases {
		if got, err := receiver.MetadataURL(issuer); err != nil || got != want {
			t.Errorf("MD-01: %s → %s %v, want %s", issuer, got, err, want)
		}
	}
	if _, err := receiver.MetadataURL("https://tx.example.net?x=1"); err == nil {
		t.Error("an issuer with a query must be refused")
	}
}
