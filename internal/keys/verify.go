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
	// ErrType: typ is missing or is not one of the accepted types.
	ErrType = errors.New("keys: wrong typ")
	// ErrMissingKeyID: the header has no kid (and the verifier has no default key, see WithDefaultKey).
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
// (STYLE.md rule 14). WithTypes and WithDefaultKey relax the last two for RFC 7523 client assertions.
type Verifier struct {
	keys KeySource
	algs []Algorithm
	// types lists the accepted typ values; "" stands for an absent typ.
	types []string
	// fallback verifies tokens without kid when set (WithDefaultKey).
	fallback *Key
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

// WithType sets the required typ (default TypeSET): exactly this type, a missing typ is refused.
func WithType(typ string) VerifyOption {
	return func(v *Verifier) error {
		if typ == "" {
			return errors.New("keys: the required typ is empty")
		}
		v.types = []string{typ}
		return nil
	}
}

// WithTypes accepts any of types as typ, compared like WithType; the empty string in the list accepts a token
// without typ (RFC 7523 client assertions often carry none, or "JWT"). It replaces the default TypeSET and any
// earlier WithType.
func WithTypes(types ...string) VerifyOption {
	return func(v *Verifier) error {
		if len(types) == 0 {
			return errors.New("keys: the list of accepted typ values is empty")
		}
		v.types = slices.Clone(types)
		return nil
	}
}

// WithDefaultKey verifies tokens whose header has no kid with k instead of refusing them with ErrMissingKeyID, for
// RFC 7523 client assertions signed with a client's only key. k must still be made for the header's alg
// (ErrAlgorithmMismatch otherwise); tokens with a kid are looked up in the key source as before.
func WithDefaultKey(k *Key) VerifyOption {
	return func(v *Verifier) error {
		if k == nil {
			return errors.New("keys: the default key is nil")
		}
		v.fallback = k.PublicKey()
		return nil
	}
}

// NewVerifier returns a Verifier that looks keys up in src.
func NewVerifier(src KeySource, opts ...VerifyOption) (*Verifier, error) {
	if src == nil {
		return nil, errors.New("keys: a verifier needs a key source")
	}
	v := &Verifier{keys: src, algs: Algorithms(), types: []string{TypeSET}}
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
// (ErrMissingKeyID, unless WithDefaultKey), key known (ErrUnknownKey), key made for alg (ErrAlgorithmMismatch),
// signature (ErrSignature). Critical header parameters go-jose does not understand make the token malformed.
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
	rawType, present := prot.ExtraHeaders[jose.HeaderType]
	typ, isString := rawType.(string)
	h.Type = typ
	if present && !isString {
		return nil, h, fmt.Errorf("%w: typ is not a string", ErrType)
	}
	if !acceptedType(present, typ, v.types) {
		if len(v.types) == 1 {
			return nil, h, fmt.Errorf("%w: %q, want %q", ErrType, typ, v.types[0])
		}
		return nil, h, fmt.Errorf("%w: %q, want one of %q", ErrType, typ, v.types)
	}
	k, err := v.key(ctx, h.KeyID)
	if err != nil {
		return nil, h, err
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

// key returns the key for kid: the default key when kid is empty and there is one, else from the key source.
func (v *Verifier) key(ctx context.Context, kid string) (*Key, error) {
	if kid == "" {
		if v.fallback != nil {
			return v.fallback, nil
		}
		return nil, ErrMissingKeyID
	}
	k, err := v.keys.Key(ctx, kid)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %q: %w", ErrUnknownKey, kid, err)
	}
	return k, nil
}

// acceptedType reports whether a typ header (present or not) is one of types, where "" accepts an absent typ.
func acceptedType(present bool, typ string, types []string) bool {
	for _, want := range types {
		if want == "" {
			if !present {
				return true
			}
			continue
		}
		if sameType(typ, want) {
			return true
		}
	}
	return false
}

// sameType compares typ values as RFC 7515 §4.1.9 says: case-insensitively, with "application/" optional.
func sameType(got, want string) bool {
	got = strings.TrimPrefix(strings.ToLower(got), "application/")
	return got != "" && got == strings.ToLower(want)
}
