package keys

import (
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// SignWithJWK signs payload with a private key and puts the public key in the protected header as jwk (no kid):
// the form of DPoP proofs (RFC 9449 §4.2), which VerifyEmbedded checks.
func SignWithJWK(k *Key, payload []byte, typ string) (string, error) {
	if !k.IsPrivate() {
		return "", fmt.Errorf("%w: key %s has no private part", ErrInvalidKey, k.kid)
	}
	if typ == "" {
		return "", errors.New("keys: a JWS needs an explicit typ")
	}
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(jose.ContentType(typ))
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg.jose(), Key: k.key}, opts)
	if err != nil {
		return "", fmt.Errorf("keys: signer: %w", err)
	}
	obj, err := js.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	return obj.CompactSerialize()
}
