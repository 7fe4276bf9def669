package keys_test

import (
	"context"
	"testing"

	"github.com/ssfd/ssfd/internal/keys"
)

// FuzzParseJWKS: any document parses to usable keys or an error, never a panic, and what parses re-encodes.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"a"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AA"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := keys.ParseJWKS(data)
		if err != nil {
			return
		}
		if _, err := j.MarshalJSON(); err != nil {
			t.Fatalf("a parsed JWKS must encode: %v", err)
		}
	})
}

// FuzzVerify: random tokens never panic and never verify.
func FuzzVerify(f *testing.F) {
	k := testKeys()[keys.ES256]
	s, _ := keys.NewSigner(k)
	tok, _ := s.Sign([]byte(`{"a":1}`), keys.TypeSET)
	f.Add(tok)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	v, err := keys.NewVerifier(keys.StaticKeys(keys.NewJWKS(k)))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		payload, _, err := v.Verify(context.Background(), token)
		if err == nil && token != tok {
			// A different string can only verify if it is the same JWS (e.g. equivalent base64); check the payload.
			if string(payload) != `{"a":1}` {
				t.Fatalf("a forged token verified: %q", token)
			}
		}
	})
}
