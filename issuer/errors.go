package issuer

import (
	"fmt"
	"net/http"
)

// The OAuth error codes the issuer answers with (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8707 §2, RFC 9449 §5).
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidClient        = "invalid_client"
	CodeInvalidGrant         = "invalid_grant"
	CodeUnauthorizedClient   = "unauthorized_client"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeInvalidScope         = "invalid_scope"
	CodeInvalidTarget        = "invalid_target"
	CodeInvalidDPoPProof     = "invalid_dpop_proof"
	CodeUnsupportedTokenType = "unsupported_token_type"
	CodeNotFound             = "not_found"
	CodeServerError          = "server_error"
	// CodeTemporarilyUnavailable answers a request the issuer could not serve because its store was briefly out
	// of reach (RFC 6749 §4.1.2.1 names it for the authorization endpoint; it means the same here), with 503.
	CodeTemporarilyUnavailable = "temporarily_unavailable"
)

// DepthExceeded is the error_description of an exchange that would go deeper than allowed
// (spec/agent-auth.md §2.4 step 4).
const DepthExceeded = "delegation_depth_exceeded"

// Error is an OAuth error response (RFC 6749 §5.2): the status, the error code and a description for the
// developer. Internal causes never reach the description.
type Error struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// Challenge is the WWW-Authenticate value of a 401.
	Challenge string `json:"-"`
}

// Error returns "code: description".
func (e *Error) Error() string { return e.Code + ": " + e.Description }

func oauthError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Description: fmt.Sprintf(format, args...)}
}

func invalidRequest(format string, args ...any) *Error {
	return oauthError(http.StatusBadRequest, CodeInvalidRequest, format, args...)
}

func invalidGrant(format string, args ...any) *Error {
	return oauthError(http.StatusBadRequest, CodeInvalidGrant, format, args...)
}

func invalidScope(format string, args ...any) *Error {
	return oauthError(http.StatusBadRequest, CodeInvalidScope, format, args...)
}

func invalidTarget(format string, args ...any) *Error {
	return oauthError(http.StatusBadRequest, CodeInvalidTarget, format, args...)
}

func invalidDPoP(format string, args ...any) *Error {
	return oauthError(http.StatusBadRequest, CodeInvalidDPoPProof, format, args...)
}

func unauthorizedClient(format string, args ...any) *Error {
	return oauthError(http.StatusBadRequest, CodeUnauthorizedClient, format, args...)
}

// invalidClient is a failed client authentication: 401 with a challenge for the scheme the client tried
// (RFC 6749 §5.2).
func invalidClient(basic bool, format string, args ...any) *Error {
	e := oauthError(http.StatusUnauthorized, CodeInvalidClient, format, args...)
	e.Challenge = `Bearer realm="ssfd"`
	if basic {
		e.Challenge = `Basic realm="ssfd"`
	}
	return e
}
