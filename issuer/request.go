package issuer

import (
	"net/url"
	"slices"
	"strings"
)

// AssertionTypeJWTBearer is the client assertion type of RFC 7523 §2.2.
const AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// TokenRequest is a parsed token endpoint request (RFC 6749 §4.4.2 and §6, RFC 8693 §2.1, RFC 8707 §2, RFC 7523
// §2.2): syntax only, nothing is authorised yet.
type TokenRequest struct {
	GrantType          string
	Scopes             []string
	Resources          []string
	Audiences          []string
	SubjectToken       string
	SubjectTokenType   string
	ActorToken         string
	ActorTokenType     string
	RequestedTokenType string
	RefreshToken       string
	ClientID           string
	ClientSecret       string
	AssertionType      string
	Assertion          string
}

// repeatable are the parameters RFC 8693 §2.1 and RFC 8707 §2 allow more than once; RFC 6749 §3.2 forbids
// repeating any other.
var repeatable = []string{"resource", "audience"}

// maxParam bounds one parameter value: tokens are the longest (a depth-6 access token stays well under 8 KiB).
const maxParam = 16 << 10

// ParseTokenRequest reads the form of a token request. It refuses repeated parameters (RFC 6749 §3.2), empty or
// oversized values, scopes that are not RFC 6749 §3.3 scope tokens, resources that are not absolute URIs without
// a fragment (RFC 8707 §2), and a grant that lacks the parameters its RFC requires. Errors are *Error with code
// invalid_request, invalid_scope, invalid_target or unsupported_grant_type.
func ParseTokenRequest(form url.Values) (*TokenRequest, error) {
	form = withoutEmpty(form)
	for name, vals := range form {
		if len(vals) > 1 && !slices.Contains(repeatable, name) {
			return nil, invalidRequest("parameter %s is repeated", name)
		}
		for _, v := range vals {
			if len(v) > maxParam {
				return nil, invalidRequest("parameter %s is longer than %d bytes", name, maxParam)
			}
		}
	}
	req := &TokenRequest{
		GrantType: form.Get("grant_type"), SubjectToken: form.Get("subject_token"),
		SubjectTokenType: form.Get("subject_token_type"), ActorToken: form.Get("actor_token"),
		ActorTokenType: form.Get("actor_token_type"), RequestedTokenType: form.Get("requested_token_type"),
		RefreshToken: form.Get("refresh_token"), ClientID: form.Get("client_id"),
		ClientSecret: form.Get("client_secret"), AssertionType: form.Get("client_assertion_type"),
		Assertion: form.Get("client_assertion"), Audiences: form["audience"],
	}
	if form.Has("scope") {
		scopes, err := ParseScope(form.Get("scope"))
		if err != nil {
			return nil, err
		}
		req.Scopes = scopes
	}
	for _, r := range form["resource"] {
		if err := checkResource(r); err != nil {
			return nil, err
		}
		if !slices.Contains(req.Resources, r) {
			req.Resources = append(req.Resources, r)
		}
	}
	for _, a := range req.Audiences {
		if a == "" {
			return nil, invalidTarget("audience must not be empty")
		}
	}
	if (req.Assertion == "") != (req.AssertionType == "") {
		return nil, invalidRequest("client_assertion and client_assertion_type go together")
	}
	if req.AssertionType != "" && req.AssertionType != AssertionTypeJWTBearer {
		return nil, invalidRequest("client_assertion_type must be %s", AssertionTypeJWTBearer)
	}
	switch req.GrantType {
	case "":
		return nil, invalidRequest("grant_type is required")
	case GrantClientCredentials:
	case GrantTokenExchange:
		if req.SubjectToken == "" || req.SubjectTokenType == "" {
			return nil, invalidRequest("subject_token and subject_token_type are required (RFC 8693 §2.1)")
		}
		if (req.ActorToken == "") != (req.ActorTokenType == "") {
			return nil, invalidRequest("actor_token and actor_token_type go together (RFC 8693 §2.1)")
		}
	case GrantRefreshToken:
		if req.RefreshToken == "" {
			return nil, invalidRequest("refresh_token is required (RFC 6749 §6)")
		}
	default:
		return nil, oauthError(400, CodeUnsupportedGrantType, "grant_type %q is not supported", req.GrantType)
	}
	return req, nil
}

// withoutEmpty drops parameters sent without a value: RFC 6749 §3.1 treats them as omitted.
func withoutEmpty(form url.Values) url.Values {
	out := make(url.Values, len(form))
	for name, vals := range form {
		for _, v := range vals {
			if v != "" {
				out[name] = append(out[name], v)
			}
		}
	}
	return out
}

// ParseScope splits a scope parameter (RFC 6749 §3.3): scope tokens of printable ASCII except space, '"' and
// '\', separated by single spaces; duplicates are dropped.
func ParseScope(s string) ([]string, error) {
	if s == "" {
		return nil, invalidScope("scope is empty")
	}
	var out []string
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			return nil, invalidScope("scope tokens are separated by single spaces")
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				return nil, invalidScope("scope token %q has a character RFC 6749 §3.3 does not allow", tok)
			}
		}
		if !slices.Contains(out, tok) {
			out = append(out, tok)
		}
	}
	return out, nil
}

// checkResource checks an RFC 8707 §2 resource: an absolute URI without a fragment.
func checkResource(r string) error {
	u, err := url.Parse(r)
	if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(r, "#") {
		return invalidTarget("resource %q must be an absolute URI without a fragment (RFC 8707 §2)", r)
	}
	return nil
}
