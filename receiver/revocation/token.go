package revocation

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
)

// maxTokenBytes bounds the access token a guard looks at; the issuer's tokens stay well under it (spec/agent-auth.md
// §2.5: "well under typical 8 KB header limits").
const maxTokenBytes = 16 << 10

// credentials finds the access token: in exactly one Authorization header with the Bearer (RFC 6750 §2.1) or DPoP
// (RFC 9449 §7.1) scheme, never in the query. It reports whether the DPoP scheme was used.
func credentials(p presentation) (token string, dpop bool, d *Denial) {
	if p.queryToken {
		return "", false, invalidRequest("send the access token in the Authorization header, not in the query")
	}
	switch len(p.authorization) {
	case 0:
		return "", false, missingCredentials("an access token is required")
	case 1:
	default:
		return "", false, invalidRequest("send one Authorization header")
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(p.authorization[0]), " ")
	token = strings.TrimLeft(token, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
	case strings.EqualFold(scheme, "DPoP"):
		dpop = true
	default:
		return "", false, missingCredentials("use the Bearer or DPoP scheme")
	}
	switch {
	case token == "" || !isToken68(token):
		return "", false, invalidRequest(`the Authorization header must be "Bearer <token>" or "DPoP <token>"`)
	case len(token) > maxTokenBytes:
		return "", false, invalidToken(dpop, "the token is too large")
	}
	return token, dpop, nil
}

// isToken68 reports whether s is an RFC 9110 §11.2 token68: what a JWS in compact form always is.
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
		if !ok {
			return false
		}
	}
	return true
}

// verifyToken runs the first checks of spec/agent-auth.md §2.5: typ at+jwt, alg on the allow-list and kid
// known, signature, then iss and aud; it returns the claims and the kid.
func (g *Guard) verifyToken(ctx context.Context, token string, dpop bool) (*Claims, string, *Denial) {
	if typ, ok := peekType(token); !ok {
		return nil, "", invalidToken(dpop, "the token is not a signed JWT")
	} else if !isAccessTokenType(typ) {
		return nil, "", invalidToken(dpop, "the token is not an access token (typ at+jwt)")
	}
	payload, h, err := g.verifier.Verify(ctx, token)
	if err != nil {
		return nil, "", verifyDenial(err, dpop)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, "", invalidToken(dpop, "the token's claims are malformed")
	}
	switch {
	case c.JTI == "" || c.IssuedAt == 0 || c.ExpiresAt == 0 || c.Subject == "" || c.ClientID == "":
		return nil, "", invalidToken(dpop, "the token lacks jti, iat, exp, sub or client_id")
	case c.Issuer != g.cfg.Issuer:
		return nil, "", invalidToken(dpop, "the token is from another issuer")
	case !g.forMe(c.Audience):
		return nil, "", invalidToken(dpop, "the token is for another audience")
	}
	return &c, h.KeyID, nil
}

// forMe reports whether aud names one of the guard's audiences.
func (g *Guard) forMe(aud schemas.Audience) bool {
	for _, a := range aud {
		for _, mine := range g.cfg.Audiences {
			if a == mine {
				return true
			}
		}
	}
	return false
}

// checkTime checks exp and nbf against the guard's clock, allowing the skew.
func (g *Guard) checkTime(c *Claims, dpop bool) *Denial {
	now := g.cfg.Now()
	if !now.Before(time.Unix(c.ExpiresAt, 0).Add(g.cfg.Skew)) {
		return invalidToken(dpop, "the token has expired")
	}
	if c.NotBefore != 0 && now.Add(g.cfg.Skew).Before(time.Unix(c.NotBefore, 0)) {
		return invalidToken(dpop, "the token is not valid yet")
	}
	return nil
}

// verifyDenial names what keys.Verify refused, without the token or internal detail. A key set that cannot be
// fetched is a 503: the token may well be good.
func verifyDenial(err error, dpop bool) *Denial {
	switch {
	case errors.Is(err, keys.ErrKeysUnavailable):
		return unavailable("the issuer's keys cannot be fetched now")
	case errors.Is(err, keys.ErrType):
		return invalidToken(dpop, "the token is not an access token (typ at+jwt)")
	case errors.Is(err, keys.ErrAlgorithmNotAllowed):
		return invalidToken(dpop, "the token's signing algorithm is not allowed")
	case errors.Is(err, keys.ErrMissingKeyID), errors.Is(err, keys.ErrUnknownKey):
		return invalidToken(dpop, "the token's signing key is unknown")
	case errors.Is(err, keys.ErrSignature), errors.Is(err, keys.ErrAlgorithmMismatch):
		return invalidToken(dpop, "the token's signature is invalid")
	}
	return invalidToken(dpop, "the token is not a signed JWT")
}

// peekType reads typ from the protected header of a compact JWS without verifying it, so that the typ check can
// run first; ok is false when there is no readable header.
func peekType(token string) (typ string, ok bool) {
	head, _, found := strings.Cut(token, ".")
	if !found {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", false
	}
	var h struct {
		Type any `json:"typ"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return "", false
	}
	typ, _ = h.Type.(string)
	return typ, true
}

// isAccessTokenType compares typ with at+jwt the way RFC 7515 §4.1.9 says: case-insensitively, with the
// "application/" prefix optional.
func isAccessTokenType(typ string) bool {
	return strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), keys.TypeAccessToken)
}
