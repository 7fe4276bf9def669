package keys

import (
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// Algorithm is a JWS algorithm ssfd signs and verifies with (RFC 7518 §3, RFC 8037). Only asymmetric algorithms
// exist here: "none" and HMAC cannot be expressed, so they can never sign or verify a SET (spec/ssf.md SET-04).
type Algorithm string

// The algorithms ssfd supports. RS256 with RSA ≥ 2048 bits is what the CAEP interoperability profile requires.
const (
	RS256 Algorithm = "RS256"
	PS256 Algorithm = "PS256"
	ES256 Algorithm = "ES256"
	EdDSA Algorithm = "EdDSA"
)

// ErrUnsupportedAlgorithm is returned for an algorithm outside RS256, PS256, ES256 and EdDSA.
var ErrUnsupportedAlgorithm = errors.New("keys: unsupported algorithm")

// Algorithms lists every supported algorithm.
func Algorithms() []Algorithm { return []Algorithm{RS256, PS256, ES256, EdDSA} }

// ParseAlgorithm returns s as an Algorithm, refusing everything else, "none" and HMAC included.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch a := Algorithm(s); a {
	case RS256, PS256, ES256, EdDSA:
		return a, nil
	}
	switch s {
	case "none", "HS256", "HS384", "HS512":
		return "", fmt.Errorf("%w: %q is never allowed for SETs or tokens (use RS256, PS256, ES256 or EdDSA)", ErrUnsupportedAlgorithm, s)
	}
	return "", fmt.Errorf("%w: %q (use RS256, PS256, ES256 or EdDSA)", ErrUnsupportedAlgorithm, s)
}

func (a Algorithm) jose() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(a) }

func joseAlgorithms(algs []Algorithm) []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		out[i] = a.jose()
	}
	return out
}
