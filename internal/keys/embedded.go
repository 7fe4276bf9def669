package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// ErrMissingJWK is returned by VerifyEmbedded when the protected header has no "jwk" member.
var ErrMissingJWK = errors.New("keys: missing jwk")

// privateJWKMembers are the JWK members that carry private or symmetric key material (RFC 7518 §6.2.2, §6.3.2,
// §6.4; RFC 8037 §2; "priv" of the ML-DSA drafts).
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// VerifyEmbedded checks a compact JWS signed with the public key its own protected header carries as "jwk", such
// as a DPoP proof (RFC 9449 §4.2, §4.3), and returns its payload and that key. The key has the header's alg and
// its RFC 7638 thumbprint as kid; the caller decides whether to trust it (for DPoP: compare Thumbprint with the
// access token's cnf.jkt).
//
// The checks run in this order, each with its own error: compact form (ErrMalformed), alg on the allow-list algs
// (ErrAlgorithmNotAllowed; "none" and HMAC never are, whatever algs says), typ equal to typ as Verify compares it
// (ErrType; an empty typ refuses every token), jwk present (ErrMissingJWK), jwk a valid public key without
// private members (ErrInvalidKey), jwk of the key type alg needs (ErrAlgorithmMismatch; an RSA key under 2048
// bits is ErrInvalidKey), exactly one signature (ErrMalformed), signature (ErrSignature). Critical header
// parameters go-jose does not understand make the token malformed.
func VerifyEmbedded(token, typ string, algs []Algorithm) (payload []byte, key *Key, err error) {
	if strings.Count(token, ".") != 2 {
		return nil, nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	hdr, err := peekHeader(token)
	if err != nil {
		return nil, nil, err
	}
	var algName string
	if json.Unmarshal(hdr["alg"], &algName) != nil || algName == "" {
		return nil, nil, fmt.Errorf("%w: the header has no alg", ErrMalformed)
	}
	alg := Algorithm(algName)
	if _, err := ParseAlgorithm(algName); err != nil || !slices.Contains(algs, alg) {
		return nil, nil, fmt.Errorf("%w: %q", ErrAlgorithmNotAllowed, algName)
	}
	var got string
	if raw, ok := hdr["typ"]; ok && json.Unmarshal(raw, &got) != nil {
		return nil, nil, fmt.Errorf("%w: typ is not a string", ErrType)
	}
	if !sameType(got, typ) {
		return nil, nil, fmt.Errorf("%w: %q, want %q", ErrType, got, typ)
	}
	key, err = embeddedKey(hdr["jwk"], alg)
	if err != nil {
		return nil, nil, err
	}
	obj, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{alg.jose()})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(obj.Signatures) != 1 {
		return nil, nil, fmt.Errorf("%w: %d signatures", ErrMalformed, len(obj.Signatures))
	}
	if a := obj.Signatures[0].Protected.Algorithm; a != algName {
		// Only a header with duplicate members can get here: refuse what two parsers read differently.
		return nil, nil, fmt.Errorf("%w: ambiguous alg %q / %q", ErrMalformed, algName, a)
	}
	payload, err = obj.Verify(key.public())
	if err != nil {
		if errors.Is(err, jose.ErrUnsupportedCriticalHeader) {
			return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return nil, nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return payload, key, nil
}

// peekHeader decodes the protected header of a compact JWS into its members, matched exactly by name (unlike
// struct decoding, which would also take "ALG" for "alg").
func peekHeader(token string) (map[string]json.RawMessage, error) {
	head, _, _ := strings.Cut(token, ".")
	h, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return nil, fmt.Errorf("%w: the header is not base64url", ErrMalformed)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(h, &hdr); err != nil || hdr == nil {
		return nil, fmt.Errorf("%w: the header is not a JSON object", ErrMalformed)
	}
	return hdr, nil
}

// embeddedKey reads the "jwk" header member as a public verification key for alg.
func embeddedKey(raw json.RawMessage, alg Algorithm) (*Key, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, ErrMissingJWK
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return nil, fmt.Errorf("%w: the jwk header is not a JSON object", ErrInvalidKey)
	}
	for _, m := range privateJWKMembers {
		if _, ok := members[m]; ok {
			return nil, fmt.Errorf("%w: the embedded jwk carries the private member %q", ErrInvalidKey, m)
		}
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("%w: embedded jwk: %w", ErrInvalidKey, err)
	}
	if !jwk.Valid() || !jwk.IsPublic() {
		return nil, fmt.Errorf("%w: the embedded jwk is not a valid public key", ErrInvalidKey)
	}
	if jwk.Algorithm != "" && jwk.Algorithm != string(alg) {
		return nil, fmt.Errorf("%w: the embedded jwk is for %q, the header says %s", ErrAlgorithmMismatch, jwk.Algorithm, alg)
	}
	if err := fits(alg, jwk.Key); err != nil {
		if slices.Contains(keyTypeAlgorithms(jwk.Key), alg) {
			return nil, err // the right key type, but too small or on another curve: ErrInvalidKey
		}
		return nil, fmt.Errorf("%w: the embedded %s key cannot verify %s", ErrAlgorithmMismatch, keyType(jwk.Key), alg)
	}
	return newKey(alg, jwk.Key, "")
}

// keyTypeAlgorithms lists the algorithms made for a public key's type.
func keyTypeAlgorithms(material any) []Algorithm {
	switch material.(type) {
	case *rsa.PublicKey:
		return []Algorithm{RS256, PS256}
	case *ecdsa.PublicKey:
		return []Algorithm{ES256}
	case ed25519.PublicKey:
		return []Algorithm{EdDSA}
	}
	return nil
}

// keyType names a public key's type for error messages.
func keyType(material any) string {
	switch material.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "EC"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", material)
}
