package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// ErrInvalidKey is returned for key material that cannot be used: malformed, symmetric, too small, or not
// matching its algorithm.
var ErrInvalidKey = errors.New("keys: invalid key")

// MinRSABits is the smallest RSA modulus accepted (CAEP interoperability profile §2.6).
const MinRSABits = 2048

// Key is a signing key (private) or a verification key (public only) with its algorithm and key id. The kid is
// the RFC 7638 thumbprint of the public key unless the key was loaded with another kid.
type Key struct {
	alg Algorithm
	kid string
	key any // *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey or their public forms
	// algs lists the algorithms a public key without an "alg" member may verify (RSA: RS256 and PS256).
	algs []Algorithm
	// thumbprint is the RFC 7638 SHA-256 thumbprint of the public key, computed once at construction.
	thumbprint string
}

// Generate returns a new private key for alg: RSA 2048 for RS256 and PS256, P-256 for ES256, Ed25519 for EdDSA.
func Generate(alg Algorithm) (*Key, error) {
	if alg == RS256 || alg == PS256 {
		return GenerateRSA(alg, MinRSABits)
	}
	var priv any
	var err error
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	return newKey(alg, priv, "")
}

// GenerateRSA returns a new RSA key of the given size for RS256 or PS256; sizes below 2048 bits are refused.
func GenerateRSA(alg Algorithm, bits int) (*Key, error) {
	if alg != RS256 && alg != PS256 {
		return nil, fmt.Errorf("%w: %s is not an RSA algorithm", ErrInvalidKey, alg)
	}
	if bits < MinRSABits {
		return nil, fmt.Errorf("%w: RSA keys need at least %d bits, not %d", ErrInvalidKey, MinRSABits, bits)
	}
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("keys: generate RSA key: %w", err)
	}
	return newKey(alg, priv, "")
}

// newKey checks that material fits alg, computes the thumbprint and uses it as kid when kid is empty.
func newKey(alg Algorithm, material any, kid string) (*Key, error) {
	if err := fits(alg, material); err != nil {
		return nil, err
	}
	k := &Key{alg: alg, kid: kid, key: material, algs: []Algorithm{alg}}
	jwk := jose.JSONWebKey{Key: k.public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: thumbprint: %w", ErrInvalidKey, err)
	}
	k.thumbprint = base64.RawURLEncoding.EncodeToString(tp)
	if k.kid == "" {
		k.kid = k.thumbprint
	}
	return k, nil
}

// fits checks that the key type matches the algorithm and that RSA keys are large enough.
func fits(alg Algorithm, material any) error {
	switch m := material.(type) {
	case *rsa.PrivateKey:
		return fits(alg, &m.PublicKey)
	case *rsa.PublicKey:
		if alg != RS256 && alg != PS256 {
			return fmt.Errorf("%w: an RSA key cannot be used with %s", ErrInvalidKey, alg)
		}
		if m.N.BitLen() < MinRSABits {
			return fmt.Errorf("%w: RSA keys need at least %d bits, not %d", ErrInvalidKey, MinRSABits, m.N.BitLen())
		}
	case *ecdsa.PrivateKey:
		return fits(alg, &m.PublicKey)
	case *ecdsa.PublicKey:
		if alg != ES256 || m.Curve != elliptic.P256() {
			return fmt.Errorf("%w: ES256 needs a P-256 key", ErrInvalidKey)
		}
	case ed25519.PrivateKey, ed25519.PublicKey:
		if alg != EdDSA {
			return fmt.Errorf("%w: an Ed25519 key cannot be used with %s", ErrInvalidKey, alg)
		}
	default:
		return fmt.Errorf("%w: unsupported key type %T", ErrInvalidKey, material)
	}
	return nil
}

// ID returns the key id (kid).
func (k *Key) ID() string { return k.kid }

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of the public key, base64url without padding: the default
// kid, but computed whatever kid the key was loaded with (for example to match a DPoP proof key, RFC 9449 §6).
func (k *Key) Thumbprint() string { return k.thumbprint }

// Algorithm returns the key's algorithm.
func (k *Key) Algorithm() Algorithm { return k.alg }

// IsPrivate reports whether the key can sign.
func (k *Key) IsPrivate() bool {
	switch k.key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return true
	}
	return false
}

// Public returns the public key.
func (k *Key) Public() crypto.PublicKey { return k.public() }

func (k *Key) public() any {
	switch m := k.key.(type) {
	case *rsa.PrivateKey:
		return &m.PublicKey
	case *ecdsa.PrivateKey:
		return &m.PublicKey
	case ed25519.PrivateKey:
		return m.Public()
	}
	return k.key
}

// PublicKey returns the public half of k as a Key of its own.
func (k *Key) PublicKey() *Key {
	return &Key{alg: k.alg, kid: k.kid, key: k.public(), algs: k.algs, thumbprint: k.thumbprint}
}

func (k *Key) jwk(private bool) jose.JSONWebKey {
	material := k.public()
	if private {
		material = k.key
	}
	return jose.JSONWebKey{Key: material, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// PublicJWK returns the public key as a JWK (RFC 7517) with kid, alg and use "sig".
func (k *Key) PublicJWK() ([]byte, error) { return json.Marshal(k.jwk(false)) }

// MarshalJSON returns the key as a JWK, private members included for a private key: the format of key files.
func (k *Key) MarshalJSON() ([]byte, error) { return json.Marshal(k.jwk(true)) }

// ParseKey reads a key from a JWK (private or public) or a PEM block (PKCS#8, SEC 1, PKCS#1 or PKIX). A JWK
// without "alg" gets it from its type where that is unambiguous (P-256 → ES256, Ed25519 → EdDSA); PEM RSA keys
// are taken as RS256 (use ParseKeyAs for PS256).
func ParseKey(data []byte) (*Key, error) { return parseKey(data, "") }

// ParseKeyAs reads a key like ParseKey and uses it with alg.
func ParseKeyAs(data []byte, alg Algorithm) (*Key, error) { return parseKey(data, alg) }

func parseKey(data []byte, alg Algorithm) (*Key, error) {
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "-----BEGIN") {
		return parsePEM([]byte(trimmed), alg)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("%w: neither a JWK nor a PEM key: %w", ErrInvalidKey, err)
	}
	if !jwk.Valid() {
		return nil, fmt.Errorf("%w: the JWK is not valid", ErrInvalidKey)
	}
	if alg == "" && jwk.Algorithm != "" {
		a, err := ParseAlgorithm(jwk.Algorithm)
		if err != nil {
			return nil, err
		}
		alg = a
	}
	if alg == "" {
		alg = inferAlgorithm(jwk.Key)
	}
	if alg == "" {
		return nil, fmt.Errorf("%w: the JWK has no \"alg\" and its type does not imply one", ErrInvalidKey)
	}
	return newKey(alg, jwk.Key, jwk.KeyID)
}

// inferAlgorithm returns the only algorithm a key type allows, or "" for RSA and unknown types.
func inferAlgorithm(material any) Algorithm {
	switch material.(type) {
	case *ecdsa.PrivateKey, *ecdsa.PublicKey:
		return ES256
	case ed25519.PrivateKey, ed25519.PublicKey:
		return EdDSA
	}
	return ""
}

func parsePEM(data []byte, alg Algorithm) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrInvalidKey)
	}
	var material any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		material, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		material, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		material, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PUBLIC KEY":
		material, err = x509.ParsePKIXPublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: unsupported PEM block %q", ErrInvalidKey, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	if ed, ok := material.(*ed25519.PrivateKey); ok {
		material = *ed
	}
	if alg == "" {
		alg = inferAlgorithm(material)
	}
	if alg == "" {
		alg = RS256
	}
	return newKey(alg, material, "")
}
