package keys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Errors of Verify, in the order the checks run.
var (
	// ErrMalformed: not a compact JWS with exactly one signature.
	ErrMalformed = errors.New("keys: malformed JWS")
	// ErrAlgorithmNotAllowed: alg is not on the allow-list ("none" and HMAC never are).
	ErrAlgorithmNotAllowed = errors.New("keys: algorithm not allowed")
	// ErrType: typ is missing or is not the required type.
	ErrType = errors.New("keys: wrong typ")
	// ErrMissingKeyID: the header has no kid.
	ErrMissingKeyID = errors.New("keys: missing kid")
	// ErrUnknownKey: no key with this kid is known.
	ErrUnknownKey = errors.New("keys: unknown kid")
	// ErrKeysUnavailable comes with ErrUnknownKey when the kid is not known because the key set could not be
	// fetched: a passing condition, unlike a kid the fetched key set does not hold.
	ErrKeysUnavailable = errors.New("keys: the key set could not be fetched")
	// ErrAlgorithmMismatch: the key with this kid is not for the header's alg.
	ErrAlgorithmMismatch = errors.New("keys: algorithm does not match the key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("keys: invalid signature")
)

// KeySource finds verification keys by kid, per call, so that rotation needs no restart.
type KeySource interface {
	Key(ctx context.Context, kid string) (*Key, error)
}

type staticKeys struct{ j *JWKS }

// Key returns the key with kid from the fixed set.
func (s staticKeys) Key(_ context.Context, kid string) (*Key, error) {
	if k, ok := s.j.Key(kid); ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownKey, kid)
}

// StaticKeys returns a KeySource over a fixed JWKS.
func StaticKeys(j *JWKS) KeySource { return staticKeys{j} }

// Header is the part of a verified JWS header callers may need.
type Header struct {
	Algorithm Algorithm
	KeyID     string
	Type      string
}

// Verifier checks compact JWS tokens with an explicit algorithm allow-list, a required typ and a required kid
// (STYLE.md rule 14).
type Verifier struct {
	keys KeySource
	algs []Algorithm
	typ  string
}

// VerifyOption configures a Verifier.
type VerifyOption func(*Verifier) error

// WithAlgorithms sets the allow-list (default: RS256, PS256, ES256, EdDSA).
func WithAlgorithms(algs ...Algorithm) VerifyOption {
	return func(v *Verifier) error {
		if len(algs) == 0 {
			return errors.New("keys: the algorithm allow-list is empty")
		}
		for _, a := range algs {
			if _, err := ParseAlgorithm(string(a)); err != nil {
				return err
			}
		}
		v.algs = slices.Clone(algs)
		return nil
	}
}

// WithType sets the required typ (default TypeSET).
func WithType(typ string) VerifyOption {
	return func(v *Verifier) error {
		if typ == "" {
			return errors.New("keys: the required typ is empty")
		}
		v.typ = typ
		return nil
	}
}

// NewVerifier returns a Verifier that looks keys up in src.
func NewVerifier(src KeySource, opts ...VerifyOption) (*Verifier, error) {
	if src == nil {
		return nil, errors.New("keys: a verifier needs a key source")
	}
	v := &Verifier{keys: src, algs: Algorithms(), typ: TypeSET}
	for _, opt := range opts {
		if err := opt(v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Verify checks token and returns its payload and header. The checks run in this order, each with its own
// error: compact form with one signature (ErrMalformed), alg on the allow-list (ErrAlgorithmNotAllowed), typ
// (ErrType; compared case-insensitively, "application/" prefix allowed, RFC 7515 §4.1.9), kid present
// (ErrMissingKeyID), key known (ErrUnknownKey), key made for alg (ErrAlgorithmMismatch), signature
// (ErrSignature). Critical header parameters go-jose does not understand make the token malformed.
func (v *Verifier) Verify(ctx context.Context, token string) ([]byte, Header, error) {
	var h Header
	if strings.Count(token, ".") != 2 {
		return nil, h, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	alg, err := peekAlgorithm(token)
	if err != nil {
		return nil, h, err
	}
	if !slices.Contains(v.algs, alg) {
		return nil, h, fmt.Errorf("%w: %q", ErrAlgorithmNotAllowed, alg)
	}
	obj, err := jose.ParseSignedCompact(token, joseAlgorithms(v.algs))
	if err != nil {
		return nil, h, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(obj.Signatures) != 1 {
		return nil, h, fmt.Errorf("%w: %d signatures", ErrMalformed, len(obj.Signatures))
	}
	prot := obj.Signatures[0].Protected
	h = Header{Algorithm: Algorithm(prot.Algorithm), KeyID: prot.KeyID}
	h.Type, _ = prot.ExtraHeaders[jose.HeaderType].(string)
	if !sameType(h.Type, v.typ) {
		return nil, h, fmt.Errorf("%w: %q, want %q", ErrType, h.Type, v.typ)
	}
	if h.KeyID == "" {
		return nil, h, ErrMissingKeyID
	}
	k, err := v.keys.Key(ctx, h.KeyID)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return nil, h, err
		}
		return nil, h, fmt.Errorf("%w: %q: %w", ErrUnknownKey, h.KeyID, err)
	}
	if !slices.Contains(k.algs, h.Algorithm) {
		return nil, h, fmt.Errorf("%w: key %s is for %s, the header says %s", ErrAlgorithmMismatch, k.kid, k.alg, h.Algorithm)
	}
	payload, err := obj.Verify(k.public())
	if err != nil {
		if errors.Is(err, jose.ErrUnsupportedCriticalHeader) {
			return nil, h, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return nil, h, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return payload, h, nil
}

// sameType compares typ values as RFC 7515 §4.1.9 says: case-insensitively, with "application/" optional.
func sameType(got, want string) bool {
	got = strings.TrimPrefix(strings.ToLower(got), "application/")
	return got != "" && got == strings.ToLower(want)
}
