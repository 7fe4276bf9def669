package keys

import (
	"errors"
	"net/url"
	"strings"
)

// TypeDPoP is the typ of DPoP proofs (RFC 9449 §4.2).
const TypeDPoP = "dpop+jwt"

// DPoPAlgorithms are the algorithms ssfd accepts for DPoP proofs (spec/agent-auth.md §2.7): VerifyEmbedded's
// allow-list at the token endpoint and at resource servers.
var DPoPAlgorithms = []Algorithm{ES256, EdDSA}

// DPoPClaims are the claims of a DPoP proof (RFC 9449 §4.2): its id, the method and URL of the request it is
// for, when it was made, and, when it accompanies an access token, the token's hash.
type DPoPClaims struct {
	JTI      string `json:"jti"`
	Method   string `json:"htm"`
	URL      string `json:"htu"`
	IssuedAt *int64 `json:"iat"`
	ATH      string `json:"ath"`
}

// SameHTU reports whether a DPoP proof's htu names the request URL, compared as RFC 9449 §4.3 says: query and
// fragment ignored, scheme and host compared case-insensitively, default ports dropped, an empty path taken as
// "/". The token endpoint and resource servers compare alike.
func SameHTU(htu, request string) bool {
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(request)
	if err1 != nil || err2 != nil || a.Host == "" || b.Host == "" {
		return false
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(origin(a), origin(b)) && urlPath(a) == urlPath(b)
}

// origin returns host[:port] without the scheme's default port.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" || strings.EqualFold(u.Scheme, "https") && port == "443" || strings.EqualFold(u.Scheme, "http") && port == "80" {
		return u.Hostname()
	}
	return u.Host
}

func urlPath(u *url.URL) string {
	if u.Path == "" {
		return "/"
	}
	return u.Path
}

// DPoPProblem says what is wrong with a DPoP proof that VerifyEmbedded refused, without internal detail, as a
// clause for an error description ("its alg must be ES256 or EdDSA").
func DPoPProblem(err error) string {
	switch {
	case errors.Is(err, ErrAlgorithmNotAllowed):
		names := make([]string, len(DPoPAlgorithms))
		for i, a := range DPoPAlgorithms {
			names[i] = string(a)
		}
		return "its alg must be " + strings.Join(names, " or ")
	case errors.Is(err, ErrType):
		return "its typ must be " + TypeDPoP
	case errors.Is(err, ErrMissingJWK), errors.Is(err, ErrInvalidKey):
		return "its header needs a public jwk"
	case errors.Is(err, ErrSignature), errors.Is(err, ErrAlgorithmMismatch):
		return "its signature does not verify with the embedded jwk"
	}
	return "it is malformed"
}
