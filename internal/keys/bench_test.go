package keys_test

import (
	"context"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ssfd/ssfd/internal/keys"
)

// setClaims is a realistic SET payload of about 400 bytes.
var setClaims = []byte(`{"iss":"https://ssf.tx.example.net/tenants/acme","jti":"0b6f1c9e4d2a4e0f9a7b3c1d2e3f4a5b","iat":1767225600,` +
	`"aud":"https://rx.example.org/ssf","txn":"c7d1-incident-4411","sub_id":{"format":"iss_sub","iss":"https://idp.example.net/",` +
	`"sub":"u-88213"},"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{"event_timestamp":1767225590,` +
	`"initiating_entity":"admin","reason_admin":{"en":"Revoked from the admin console"}}}}`)

// rawSigner is go-jose used directly, with the same headers ssfd sets.
func rawSigner(b *testing.B, k *keys.Key) jose.Signer {
	b.Helper()
	var jwk jose.JSONWebKey
	raw, _ := k.MarshalJSON()
	if err := jwk.UnmarshalJSON(raw); err != nil {
		b.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm()), Key: jwk},
		(&jose.SignerOptions{}).WithType(keys.TypeSET))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkSign(b *testing.B) {
	for _, alg := range keys.Algorithms() {
		k := testKeys()[alg]
		b.Run(string(alg)+"/ssfd", func(b *testing.B) {
			s, err := keys.NewSigner(k)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := s.Sign(setClaims, keys.TypeSET); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(alg)+"/gojose", func(b *testing.B) {
			s := rawSigner(b, k)
			for b.Loop() {
				obj, err := s.Sign(setClaims)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := obj.CompactSerialize(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	for _, alg := range keys.Algorithms() {
		k := testKeys()[alg]
		s, _ := keys.NewSigner(k)
		tok, err := s.Sign(setClaims, keys.TypeSET)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(alg)+"/ssfd", func(b *testing.B) {
			v, err := keys.NewVerifier(keys.StaticKeys(keys.NewJWKS(k)))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(alg)+"/gojose", func(b *testing.B) {
			pub := k.Public()
			algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)}
			for b.Loop() {
				obj, err := jose.ParseSignedCompact(tok, algs)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := obj.Verify(pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
