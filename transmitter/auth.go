package transmitter

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/schemas"
)

// The OAuth scopes of the transmitter's APIs (spec/ssf.md AZ-04): reads need ssf.read, changes ssf.manage, and
// the intake API ssf.emit.
const (
	ScopeRead   = "ssf.read"
	ScopeManage = "ssf.manage"
	ScopeEmit   = "ssf.emit"
)

// Principal is the authenticated caller of an API: a client with scopes. Streams belong to the client that
// created them (spec/ssf.md API-02, MT-02).
type Principal struct {
	// ClientID identifies the client; it owns the streams it creates.
	ClientID string
	// Scopes lists what the token allows.
	Scopes []string
	// Audience is the aud of the streams this client creates; the client ID when empty.
	Audience schemas.Audience
}

// Has reports whether the principal holds scope. ssf.manage implies ssf.read.
func (p Principal) Has(scope string) bool {
	return slices.Contains(p.Scopes, scope) || scope == ScopeRead && slices.Contains(p.Scopes, ScopeManage)
}

// ErrInvalidToken is returned by a TokenVerifier for a token that is unknown, expired or revoked.
var ErrInvalidToken = errors.New("transmitter: invalid token")

// TokenVerifier checks a bearer token and says whose it is. Static tokens implement it now; the built-in issuer
// implements it for its access tokens.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (Principal, error)
}

// StaticTokens is a TokenVerifier over a fixed set of tokens, such as the --dev admin token and tokens from the
// configuration file. Tokens are kept as SHA-256 digests.
type StaticTokens struct {
	byDigest map[[sha256.Size]byte]Principal
}

// NewStaticTokens returns a verifier that knows the given tokens.
func NewStaticTokens(tokens map[string]Principal) *StaticTokens {
	st := &StaticTokens{byDigest: make(map[[sha256.Size]byte]Principal, len(tokens))}
	for tok, p := range tokens {
		st.byDigest[sha256.Sum256([]byte(tok))] = p
	}
	return st
}

// VerifyToken returns the principal of a known token.
func (st *StaticTokens) VerifyToken(_ context.Context, token string) (Principal, error) {
	p, ok := st.byDigest[sha256.Sum256([]byte(token))]
	if !ok {
		return Principal{}, ErrInvalidToken
	}
	return p, nil
}

type principalKey struct{}

// PrincipalFrom returns the principal the auth middleware stored in the request context.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Authenticate returns echo middleware that requires a bearer token in the Authorization header with the given
// scope (RFC 6750 §2.1; a token in the query is refused, spec/ssf.md AZ-03), and stores the principal in the
// request context. Failures are RFC 6750 §3.1 errors with WWW-Authenticate.
func Authenticate(tv TokenVerifier, scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.URL.Query().Has("access_token") {
				return authError(http.StatusBadRequest, "invalid_request", "tokens are accepted in the Authorization header only", scope)
			}
			h := r.Header.Get(echo.HeaderAuthorization)
			scheme, token, ok := strings.Cut(h, " ")
			if h == "" {
				return authError(http.StatusUnauthorized, "", "a bearer token is required", scope)
			}
			if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
				return authError(http.StatusUnauthorized, "invalid_token", "the Authorization header must be \"Bearer <token>\"", scope)
			}
			p, err := tv.VerifyToken(r.Context(), strings.TrimSpace(token))
			if err != nil {
				return authError(http.StatusUnauthorized, "invalid_token", "the token is not valid", scope)
			}
			if !p.Has(scope) {
				return authError(http.StatusForbidden, "insufficient_scope", "the token lacks scope "+scope, scope)
			}
			if len(p.Audience) == 0 {
				p.Audience = schemas.Audience{p.ClientID}
			}
			c.SetRequest(r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
			return next(c)
		}
	}
}

// authError builds an RFC 6750 §3 error with its WWW-Authenticate challenge.
func authError(status int, code, desc, scope string) *Error {
	challenge := `Bearer realm="ssfd"`
	if code != "" {
		challenge += `, error="` + code + `", error_description="` + desc + `"`
	}
	if status == http.StatusForbidden {
		challenge += `, scope="` + scope + `"`
	}
	if code == "" {
		code = "unauthorized"
	}
	return &Error{Status: status, Code: code, Description: desc, Header: http.Header{"WWW-Authenticate": []string{challenge}}}
}
