package revocation

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// The error codes a Guard answers with: RFC 6750 §3.1, RFC 9449 §7.1, and temporarily_unavailable (RFC 6749
// §4.1.2.1) for the fail-closed 503s of spec/agent-auth.md §3.5.
const (
	CodeInvalidRequest         = "invalid_request"
	CodeInvalidToken           = "invalid_token"
	CodeInvalidDPoPProof       = "invalid_dpop_proof"
	CodeTemporarilyUnavailable = "temporarily_unavailable"
)

// DescriptionRevoked is the error_description of a revoked token (spec/agent-auth.md §3.4).
const DescriptionRevoked = "token revoked"

// retryAfter is what a fail-closed 503 tells the client to wait before it tries again.
const retryAfter = 10 * time.Second

// dpopChallenge is the DPoP challenge with the proof algorithms a Guard accepts (RFC 9449 §7.1).
const dpopChallenge = `DPoP algs="ES256 EdDSA"`

// Denial is why a Guard refused a request (spec/agent-auth.md §2.5, §3.4): the HTTP status, the RFC 6750 §3.1 or
// RFC 9449 §7.1 error code ("" when the request carried no credentials at all), a short description that never
// echoes the token, the WWW-Authenticate challenge, and for 503s how long to wait. It renders itself: as an
// http.Handler, and through HTTPStatus, HTTPHeader and HTTPBody for internal/server's echo error handler.
type Denial struct {
	Status      int
	Code        string
	Description string
	// Challenge is the WWW-Authenticate value; empty for 503s.
	Challenge string
	// RetryAfter is sent as Retry-After (in seconds) when it is positive.
	RetryAfter time.Duration
}

// Error returns the status, code and description.
func (d *Denial) Error() string {
	s := "revocation: " + strconv.Itoa(d.Status)
	if d.Code != "" {
		s += " " + d.Code
	}
	return s + ": " + d.Description
}

// HTTPStatus returns the status code.
func (d *Denial) HTTPStatus() int { return d.Status }

// HTTPHeader returns WWW-Authenticate and Retry-After, where the denial has them.
func (d *Denial) HTTPHeader() http.Header {
	h := http.Header{}
	if d.Challenge != "" {
		h.Set("WWW-Authenticate", d.Challenge)
	}
	if d.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((d.RetryAfter+time.Second-1)/time.Second)))
	}
	return h
}

// denialBody is the JSON body of a denial (RFC 6749 §5.2 members).
type denialBody struct {
	Error       string `json:"error,omitempty"`
	Description string `json:"error_description,omitempty"`
}

// HTTPBody returns the JSON body: error and error_description.
func (d *Denial) HTTPBody() any { return denialBody{Error: d.Code, Description: d.Description} }

// ServeHTTP writes the denial: its headers, Cache-Control no-store and the JSON body.
func (d *Denial) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, vs := range d.HTTPHeader() {
		h[k] = vs
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(d.Status)
	if r.Method != http.MethodHead {
		_ = json.NewEncoder(w).Encode(d.HTTPBody())
	}
}

// challenge builds a WWW-Authenticate value for the scheme the token needs; desc is one of this package's fixed
// strings, so it never needs escaping.
func challenge(dpop bool, code, desc string) string {
	if dpop {
		if code == "" {
			return dpopChallenge
		}
		return dpopChallenge + `, error="` + code + `", error_description="` + desc + `"`
	}
	if code == "" {
		return "Bearer"
	}
	return `Bearer error="` + code + `", error_description="` + desc + `"`
}

// missingCredentials is the answer to a request without a token: 401, both schemes offered, no error code
// (RFC 6750 §3.1, RFC 9449 §7.1).
func missingCredentials(desc string) *Denial {
	return &Denial{Status: http.StatusUnauthorized, Description: desc, Challenge: "Bearer, " + dpopChallenge}
}

// invalidRequest is a malformed request: 400 invalid_request (RFC 6750 §3.1).
func invalidRequest(desc string) *Denial {
	return &Denial{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: desc,
		Challenge: challenge(false, CodeInvalidRequest, desc)}
}

// invalidToken is a token that is not acceptable: 401 invalid_token, challenging with the DPoP scheme when dpop.
func invalidToken(dpop bool, desc string) *Denial {
	return &Denial{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: desc,
		Challenge: challenge(dpop, CodeInvalidToken, desc)}
}

// invalidProof is a DPoP proof that is not acceptable: 401 invalid_dpop_proof (RFC 9449 §7.1).
func invalidProof(desc string) *Denial {
	return &Denial{Status: http.StatusUnauthorized, Code: CodeInvalidDPoPProof, Description: desc,
		Challenge: challenge(true, CodeInvalidDPoPProof, desc)}
}

// unavailable is a fail-closed 503: the guard cannot tell whether the token is still good.
func unavailable(desc string) *Denial {
	return &Denial{Status: http.StatusServiceUnavailable, Code: CodeTemporarilyUnavailable, Description: desc,
		RetryAfter: retryAfter}
}
