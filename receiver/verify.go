package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
)

// VerifyError is why a SET was refused, with the RFC 8935 error code a push endpoint answers with and a poll
// client reports in setErrs (spec/ssf.md §1.3).
type VerifyError struct {
	Code        schemas.ErrorCode
	Description string
	Err         error
}

// Error renders "code: description".
func (e *VerifyError) Error() string { return string(e.Code) + ": " + e.Description }

// Unwrap returns the underlying cause.
func (e *VerifyError) Unwrap() error { return e.Err }

// SETError returns the error as the body of an RFC 8935 error response.
func (e *VerifyError) SETError() schemas.SETError {
	return schemas.SETError{Err: e.Code, Description: e.Description}
}

// Verifier checks SETs from one transmitter in the order of spec/ssf.md §1.3: JWS with an algorithm allow-list
// (VAL-01, VAL-03), typ secevent+jwt (VAL-02), a known kid and a valid signature (VAL-03, VAL-04), iss (VAL-05),
// aud (VAL-06), iat not in the future beyond a skew and the SSF claim rules (VAL-07), and the event payload
// (VAL-09). Replay protection is the caller's, keyed on (iss, jti).
type Verifier struct {
	src       keys.KeySource
	jws       *keys.Verifier
	issuer    string
	audiences []string
	skew      time.Duration
	now       func() time.Time
	parse     []schemas.ParseOption
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier) error

// WithAlgorithms sets the algorithm allow-list (default RS256, PS256, ES256, EdDSA). none and HMAC cannot be
// allowed.
func WithAlgorithms(algs ...keys.Algorithm) VerifierOption {
	return func(v *Verifier) error {
		jws, err := v.jwsWith(keys.WithAlgorithms(algs...))
		v.jws = jws
		return err
	}
}

// WithClockSkew sets how far in the future iat may be (default 60 s, spec/ssf.md VAL-07).
func WithClockSkew(d time.Duration) VerifierOption {
	return func(v *Verifier) error {
		if d < 0 {
			return errors.New("receiver: clock skew must not be negative")
		}
		v.skew = d
		return nil
	}
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) VerifierOption {
	return func(v *Verifier) error { v.now = now; return nil }
}

// WithLegacyPeers accepts the legacy identifiers of spec/ssf.md §14.2 (schemas.AcceptLegacy).
func WithLegacyPeers() VerifierOption {
	return func(v *Verifier) error { v.parse = []schemas.ParseOption{schemas.AcceptLegacy()}; return nil }
}

// NewVerifier returns a Verifier for SETs issued by issuer, signed with keys from src, and addressed to one of
// audiences.
func NewVerifier(src keys.KeySource, issuer string, audiences []string, opts ...VerifierOption) (*Verifier, error) {
	if src == nil || issuer == "" || len(audiences) == 0 {
		return nil, errors.New("receiver: a verifier needs a key source, an issuer and at least one audience")
	}
	v := &Verifier{src: src, issuer: issuer, audiences: audiences, skew: time.Minute, now: time.Now}
	var err error
	if v.jws, err = v.jwsWith(); err != nil {
		return nil, err
	}
	for _, opt := range opts {
		if err := opt(v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (v *Verifier) jwsWith(opts ...keys.VerifyOption) (*keys.Verifier, error) {
	return keys.NewVerifier(v.src, append([]keys.VerifyOption{keys.WithType(keys.TypeSET)}, opts...)...)
}

// Verify checks one SET in compact serialization and returns its claims, or a *VerifyError when the SET is refused,
// or another error when it could not be checked now (the transmitter's JWKS could not be fetched): try again.
func (v *Verifier) Verify(ctx context.Context, token string) (*schemas.SET, error) {
	set, _, err := v.verify(ctx, token)
	return set, err
}

// verify is Verify that also returns the verified claims as they were signed.
func (v *Verifier) verify(ctx context.Context, token string) (*schemas.SET, []byte, error) {
	payload, _, err := v.jws.Verify(ctx, token)
	if errors.Is(err, keys.ErrKeysUnavailable) {
		// Not the SET's fault: the transmitter's JWKS could not be fetched. Refusing it would make the
		// transmitter drop it for good (RFC 8935 codes are permanent); an error that is not a *VerifyError makes
		// every delivery method try again later.
		return nil, nil, fmt.Errorf("receiver: %w", err)
	}
	if err != nil {
		return nil, nil, jwsError(err)
	}
	set, perr := schemas.ParseSET(payload, v.parse...)
	var iss string
	var aud schemas.Audience
	if perr == nil {
		iss, aud = set.Issuer, set.Audience
	} else {
		// The claims are invalid, but a SET from another issuer or for another receiver is refused as such first
		// (spec/ssf.md §1.3 checks iss and aud before the event).
		var envelope struct {
			Issuer   string           `json:"iss"`
			Audience schemas.Audience `json:"aud"`
		}
		if err := json.Unmarshal(payload, &envelope); err != nil {
			return nil, nil, &VerifyError{Code: schemas.ErrInvalidRequest, Description: "the SET claims are not valid JSON", Err: err}
		}
		iss, aud = envelope.Issuer, envelope.Audience
	}
	if iss != v.issuer {
		return nil, nil, &VerifyError{Code: schemas.ErrInvalidIssuer, Description: fmt.Sprintf("iss %q is not the configured issuer", iss)}
	}
	if !v.addressedToUs(aud) {
		return nil, nil, &VerifyError{Code: schemas.ErrInvalidAudience, Description: "aud does not name this receiver"}
	}
	if perr != nil {
		return nil, nil, &VerifyError{Code: schemas.ErrInvalidRequest, Description: perr.Error(), Err: perr}
	}
	if iat := set.IssuedAt.Time(); iat.After(v.now().Add(v.skew)) {
		return nil, nil, &VerifyError{Code: schemas.ErrInvalidRequest,
			Description: fmt.Sprintf("iat %d is in the future", iat.Unix())}
	}
	return set, payload, nil
}

func (v *Verifier) addressedToUs(aud schemas.Audience) bool {
	for _, a := range v.audiences {
		if aud.Contains(a) {
			return true
		}
	}
	return false
}

// jwsError maps a JWS failure to its RFC 8935 code: a token that is not a SET JWS is invalid_request; a key or
// algorithm that is not acceptable is invalid_key; a signature that does not verify is authentication_failed.
func jwsError(err error) *VerifyError {
	code := schemas.ErrInvalidKey
	switch {
	case errors.Is(err, keys.ErrMalformed), errors.Is(err, keys.ErrType):
		code = schemas.ErrInvalidRequest
	case errors.Is(err, keys.ErrSignature):
		code = schemas.ErrAuthenticationFailed
	}
	return &VerifyError{Code: code, Description: err.Error(), Err: err}
}
