package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
)

// checkDPoP verifies the DPoP header of a token request, if there is one, and returns the JWK thumbprint of its
// key ("" without a proof). RFC 9449 §4.3: one header, a dpop+jwt signed by the embedded public jwk with an
// allowed alg, htm POST, htu this token endpoint (without query and fragment), iat within a minute of now, no
// ath at the token endpoint, and a jti not seen before.
func (is *Issuer) checkDPoP(ctx context.Context, r *http.Request) (string, error) {
	vals := r.Header.Values("DPoP")
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", invalidDPoP("send one DPoP header, not %d", len(vals))
	}
	payload, key, err := keys.VerifyEmbedded(vals[0], keys.TypeDPoP, keys.DPoPAlgorithms)
	if err != nil {
		return "", invalidDPoP("the DPoP proof is not valid: %s", dpopReason(err))
	}
	var c keys.DPoPClaims
	if json.Unmarshal(payload, &c) != nil {
		return "", invalidDPoP("the DPoP proof's claims are not a JSON object")
	}
	now := is.now()
	switch {
	case c.JTI == "" || c.IssuedAt == nil:
		return "", invalidDPoP("the DPoP proof needs jti and iat")
	case c.Method != http.MethodPost:
		return "", invalidDPoP("the DPoP proof's htm must be POST")
	case !sameURL(c.URL, is.TokenEndpoint()):
		return "", invalidDPoP("the DPoP proof's htu must be %s", is.TokenEndpoint())
	case c.ATH != "":
		return "", invalidDPoP("a DPoP proof at the token endpoint carries no ath")
	}
	iat := time.Unix(*c.IssuedAt, 0)
	if iat.Before(now.Add(-skew)) || iat.After(now.Add(skew)) {
		return "", invalidDPoP("the DPoP proof's iat is not within %s of now", skew)
	}
	jkt := key.Thumbprint()
	err = is.store.UseOnce(ctx, "dpop|"+jkt+"|"+c.JTI, iat.Add(2*skew))
	if errors.Is(err, ErrReplay) {
		return "", invalidDPoP("the DPoP proof was used before")
	}
	return jkt, err
}

// dpopReason names what was wrong with a proof without internal detail.
func dpopReason(err error) string {
	switch {
	case errors.Is(err, keys.ErrAlgorithmNotAllowed):
		return "alg must be ES256 or EdDSA"
	case errors.Is(err, keys.ErrType):
		return "typ must be dpop+jwt"
	case errors.Is(err, keys.ErrMissingJWK), errors.Is(err, keys.ErrInvalidKey):
		return "the header needs a public jwk"
	case errors.Is(err, keys.ErrSignature), errors.Is(err, keys.ErrAlgorithmMismatch):
		return "the signature does not verify with the embedded jwk"
	}
	return "malformed"
}

// sameURL compares an htu with a URL, ignoring query and fragment and the case of scheme and host
// (RFC 9449 §4.3 item 9).
func sameURL(htu, want string) bool {
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(want)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host) && a.Path == b.Path
}
