package keys

import (
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// The JWT types ssfd signs: SETs (RFC 8417 §2.3, SSF 1.0 §4.1.1) and access tokens (RFC 9068 §2.1).
const (
	TypeSET         = "secevent+jwt"
	TypeAccessToken = "at+jwt"
)

// Signer signs payloads with one private key. It builds the go-jose signers once per type and is safe for
// concurrent use.
type Signer struct {
	key     *Key
	signers map[string]jose.Signer
}

// NewSigner returns a Signer for a private key, ready for the SET and access-token types.
func NewSigner(k *Key) (*Signer, error) {
	if !k.IsPrivate() {
		return nil, fmt.Errorf("%w: key %s has no private part", ErrInvalidKey, k.kid)
	}
	s := &Signer{key: k, signers: map[string]jose.Signer{}}
	for _, typ := range []string{TypeSET, TypeAccessToken} {
		js, err := s.build(typ)
		if err != nil {
			return nil, err
		}
		s.signers[typ] = js
	}
	return s, nil
}

func (s *Signer) build(typ string) (jose.Signer, error) {
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	js, err := jose.NewSigner(jose.SigningKey{
		Algorithm: s.key.alg.jose(),
		Key:       jose.JSONWebKey{Key: s.key.key, KeyID: s.key.kid, Algorithm: string(s.key.alg)},
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("keys: signer for %s: %w", s.key.kid, err)
	}
	return js, nil
}

// Key returns the signing key.
func (s *Signer) Key() *Key { return s.key }

// Sign returns the compact JWS of payload with the protected header alg, kid and typ.
func (s *Signer) Sign(payload []byte, typ string) (string, error) {
	if typ == "" {
		return "", errors.New("keys: a JWS needs an explicit typ")
	}
	js, ok := s.signers[typ]
	if !ok {
		var err error
		if js, err = s.build(typ); err != nil {
			return "", err
		}
	}
	obj, err := js.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	return obj.CompactSerialize()
}
