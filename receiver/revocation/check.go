package revocation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ssfd/ssfd/schemas"
)

// MaxCheckBody is the largest body the check API reads; larger ones are answered 413.
const MaxCheckBody = 64 << 10

// ErrInvalidCheck is returned by Check for a request that cannot be checked at all (no token, a bad method or
// URL); the check API answers it with 400 invalid_request.
var ErrInvalidCheck = errors.New("revocation: invalid check request")

// checkError is an ErrInvalidCheck with what is wrong in words for the caller.
type checkError struct{ description string }

func invalidCheck(description string) error { return &checkError{description} }

func (e *checkError) Error() string        { return ErrInvalidCheck.Error() + ": " + e.description }
func (e *checkError) Is(target error) bool { return target == ErrInvalidCheck }

// CheckRequest asks whether a request with this token may pass, for an API gateway's external authorization
// hook: the access token, the DPoP proof when the client sent one (the DPoP scheme is then assumed), and the
// method and absolute URL of the client's request, against which the proof's htm and htu are checked.
type CheckRequest struct {
	Token  string `json:"token"`
	DPoP   string `json:"dpop,omitempty"`
	Method string `json:"method,omitempty"`
	URL    string `json:"url,omitempty"`
}

// CheckResult is the check API's answer. When Allow is true it names the token's client, subject, scope, jti and
// actor chain (current actor first) and says whether the revocation feed was stale (Degraded); when false, it
// carries the status, error code, reason, challenge and Retry-After seconds the gateway should answer with.
type CheckResult struct {
	Allow      bool     `json:"allow"`
	ClientID   string   `json:"client_id,omitempty"`
	Subject    string   `json:"sub,omitempty"`
	Scope      string   `json:"scope,omitempty"`
	JTI        string   `json:"jti,omitempty"`
	Act        []string `json:"act,omitempty"`
	Degraded   bool     `json:"degraded,omitempty"`
	Status     int      `json:"status,omitempty"`
	Error      string   `json:"error,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Challenge  string   `json:"www_authenticate,omitempty"`
	RetryAfter int      `json:"retry_after,omitempty"`
}

// Check runs every check of Authorize on a token presented to a gateway. Running it consumes the DPoP proof's
// jti, so a resource server behind the gateway must not share this Guard's proof cache.
func (g *Guard) Check(ctx context.Context, req CheckRequest) (CheckResult, error) {
	if req.Token == "" {
		return CheckResult{}, invalidCheck("token is required")
	}
	if req.Method != "" && !isMethod(req.Method) {
		return CheckResult{}, invalidCheck("method is not an HTTP method")
	}
	p := presentation{method: req.Method, url: req.URL}
	if req.URL != "" {
		u, err := url.Parse(req.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return CheckResult{}, invalidCheck("url must be an absolute http(s) URL")
		}
		p.queryToken = u.Query().Has("access_token")
	}
	p.authorization = []string{"Bearer " + req.Token}
	if req.DPoP != "" {
		p.authorization, p.dpop = []string{"DPoP " + req.Token}, []string{req.DPoP}
	}
	return result(g.authorize(ctx, p)), nil
}

// result turns a verdict or a denial into a CheckResult.
func result(v verdict, d *Denial) CheckResult {
	if d != nil {
		return CheckResult{Status: d.Status, Error: d.Code, Reason: d.Description, Challenge: d.Challenge,
			RetryAfter: int(d.RetryAfter.Seconds())}
	}
	c := v.claims
	return CheckResult{Allow: true, ClientID: c.ClientID, Subject: c.Subject, Scope: c.Scope, JTI: c.JTI,
		Act: c.Actors(), Degraded: v.degraded}
}

// CheckHandler is the sidecar check API for API gateways' external authorization hooks; internal/server mounts it
// at POST /api/v1/check. The body is a JSON CheckRequest:
//
//	{"token": "...", "dpop": "<proof, optional>", "method": "GET", "url": "https://rs.example/path"}
//
// or empty, and then the request's own Authorization and DPoP headers are checked, against the client request
// that X-Forwarded-Method, X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri describe (the forms of
// Traefik's forwardAuth and Envoy's ext_authz; without Proto and Host, PublicURL or this request's Host is used).
// The mount must therefore not authenticate the gateway with the Authorization header.
//
// A checked token is answered 200 with a CheckResult: {"allow": true, "client_id", "sub", "scope", "jti", "act"}
// or {"allow": false, "status": 401, "error": "invalid_token", "reason": "token revoked"}. A body that is not a
// valid CheckRequest is answered 400, one over MaxCheckBody 413, a method other than POST 405; bad input never
// causes a 500.
func (g *Guard) CheckHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, denialBody{Error: CodeInvalidRequest, Description: "use POST"})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCheckBody))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			writeJSON(w, http.StatusRequestEntityTooLarge, denialBody{Error: CodeInvalidRequest,
				Description: fmt.Sprintf("the body is larger than %d bytes", MaxCheckBody)})
			return
		case err != nil:
			writeJSON(w, http.StatusBadRequest, denialBody{Error: CodeInvalidRequest, Description: "the body cannot be read"})
			return
		}
		if len(strings.TrimSpace(string(body))) == 0 {
			writeJSON(w, http.StatusOK, result(g.authorize(r.Context(), g.forwarded(r))))
			return
		}
		res, err := g.checkBody(r.Context(), body)
		var invalid *checkError
		if errors.As(err, &invalid) {
			writeJSON(w, http.StatusBadRequest, denialBody{Error: CodeInvalidRequest, Description: invalid.description})
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

// checkBody parses a JSON CheckRequest and checks it; its errors are *checkError.
func (g *Guard) checkBody(ctx context.Context, body []byte) (CheckResult, error) {
	var req CheckRequest
	if err := json.Unmarshal(body, &req); err != nil {
		if typ := (*json.UnmarshalTypeError)(nil); errors.As(err, &typ) && typ.Field == "" {
			return CheckResult{}, invalidCheck("the body must be a JSON object with token, dpop, method and url")
		}
		return CheckResult{}, invalidCheck(schemas.DescribeJSONError(err))
	}
	return g.Check(ctx, req)
}

// forwarded reads the client request a gateway describes in headers.
func (g *Guard) forwarded(r *http.Request) presentation {
	p := g.present(r)
	p.method = r.Header.Get("X-Forwarded-Method")
	u, err := url.ParseRequestURI(r.Header.Get("X-Forwarded-Uri"))
	if err != nil {
		p.url = "" // no htu can match
		return p
	}
	base := g.base(r)
	if proto, host := r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"); proto != "" && host != "" {
		base = proto + "://" + host
	}
	p.url = base + u.EscapedPath()
	p.queryToken = p.queryToken || u.Query().Has("access_token")
	return p
}

// isMethod reports whether s is an RFC 9110 §9.1 method name (a token).
func isMethod(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)
		if !ok {
			return false
		}
	}
	return true
}

// writeJSON writes v with status, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
