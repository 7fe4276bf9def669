package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
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
		return "", invalidDPoP("the DPoP proof is not valid: %s", keys.DPoPProblem(err))
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
	case !keys.SameHTU(c.URL, is.TokenEndpoint()):
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
