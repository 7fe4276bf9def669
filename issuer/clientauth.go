package issuer

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
)

// credentials are what a request presented to authenticate its client, in any of the three methods.
type credentials struct {
	basicID, basicSecret string
	basic                bool
	req                  *TokenRequest
}

// credentialsFrom reads the Authorization header of client_secret_basic (RFC 6749 §2.3.1: both parts are
// form-encoded before base64).
func credentialsFrom(r *http.Request, req *TokenRequest) (credentials, error) {
	cr := credentials{req: req}
	id, secret, ok := r.BasicAuth()
	if !ok {
		if r.Header.Get("Authorization") != "" {
			return cr, invalidClient(false, "the Authorization header is not HTTP Basic client authentication")
		}
		return cr, nil
	}
	var err1, err2 error
	cr.basicID, err1 = url.QueryUnescape(id)
	cr.basicSecret, err2 = url.QueryUnescape(secret)
	if err1 != nil || err2 != nil {
		return cr, invalidClient(true, "the Basic credentials are not form-encoded (RFC 6749 §2.3.1)")
	}
	cr.basic = true
	return cr, nil
}

// authenticate finds the client of a request and checks its credentials with the one method the request used,
// which must be the client's registered method (RFC 6749 §2.3: one method per request). A disabled client fails
// like an unknown one.
func (is *Issuer) authenticate(ctx context.Context, cr credentials) (*Client, error) {
	req := cr.req
	methods := 0
	for _, used := range []bool{cr.basic, req.ClientSecret != "", req.Assertion != ""} {
		if used {
			methods++
		}
	}
	switch {
	case methods == 0:
		return nil, invalidClient(false, "client authentication is required")
	case methods > 1:
		return nil, invalidRequest("use exactly one client authentication method (RFC 6749 §2.3)")
	}
	var (
		id, method string
	)
	switch {
	case cr.basic:
		id, method = cr.basicID, AuthClientSecretBasic
		if req.ClientID != "" && req.ClientID != id {
			return nil, invalidRequest("client_id does not match the Basic credentials")
		}
	case req.ClientSecret != "":
		id, method = req.ClientID, AuthClientSecretPost
	default:
		var err error
		if id, err = ParseClientAssertion(req.Assertion); err != nil {
			return nil, err
		}
		method = AuthPrivateKeyJWT
		if req.ClientID != "" && req.ClientID != id {
			return nil, invalidClient(false, "client_id does not match the client assertion")
		}
	}
	if id == "" {
		return nil, invalidClient(cr.basic, "client_id is required")
	}
	c, err := is.store.Client(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, invalidClient(cr.basic, "client authentication failed")
	}
	if err != nil {
		return nil, err
	}
	if c.AuthMethod != method {
		return nil, invalidClient(cr.basic, "client authentication failed") // no hint at which method is registered
	}
	switch method {
	case AuthClientSecretBasic:
		err = checkSecret(c, cr.basicSecret, true)
	case AuthClientSecretPost:
		err = checkSecret(c, req.ClientSecret, false)
	default:
		err = is.checkAssertion(ctx, c, req.Assertion)
	}
	if err != nil {
		return nil, err
	}
	if c.Disabled {
		return nil, invalidClient(cr.basic, "the client is disabled")
	}
	return c, nil
}

// hashSecret is the stored form of a client secret.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func checkSecret(c *Client, secret string, basic bool) error {
	want, err := hex.DecodeString(c.SecretHash)
	got := sha256.Sum256([]byte(secret))
	if err != nil || len(want) != len(got) || subtle.ConstantTimeCompare(want, got[:]) != 1 {
		return invalidClient(basic, "client authentication failed")
	}
	return nil
}

// assertionClaims are the claims RFC 7523 §3 requires of a client assertion.
type assertionClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  schemas.Audience `json:"aud"`
	ExpiresAt *int64           `json:"exp"`
	IssuedAt  *int64           `json:"iat"`
	NotBefore *int64           `json:"nbf"`
	JTI       string           `json:"jti"`
}

// ParseClientAssertion decodes a client assertion's claims WITHOUT verifying its signature, to find the client
// whose keys verify it, and checks their shape (RFC 7523 §3: iss and sub are the client_id, aud, exp and jti are
// present). Errors are *Error invalid_client.
func ParseClientAssertion(assertion string) (iss string, err error) {
	_, payload, derr := keys.Decode(assertion)
	if derr != nil {
		return "", invalidClient(false, "the client assertion is not a JWT")
	}
	var c assertionClaims
	if json.Unmarshal(payload, &c) != nil {
		return "", invalidClient(false, "the client assertion's claims are not a JSON object")
	}
	if c.Issuer == "" || c.Issuer != c.Subject {
		return "", invalidClient(false, "the client assertion's iss and sub must both be the client_id (RFC 7523 §3)")
	}
	if len(c.Audience) == 0 || c.ExpiresAt == nil || c.JTI == "" {
		return "", invalidClient(false, "the client assertion needs aud, exp and jti (RFC 7523 §3)")
	}
	return c.Issuer, nil
}

// checkAssertion verifies a private_key_jwt assertion with the client's registered keys: signature, aud naming
// this issuer or its token endpoint, exp in the future and at most AssertionMaxAge ahead, nbf passed, and a jti
// never seen before (kept until exp).
func (is *Issuer) checkAssertion(ctx context.Context, c *Client, assertion string) error {
	set, err := keys.ParseJWKS(c.JWKS)
	if err != nil || set.Len() == 0 {
		return invalidClient(false, "the client has no usable keys registered")
	}
	opts := []keys.VerifyOption{keys.WithTypes("", "JWT"), keys.WithAlgorithms(keys.ES256, keys.EdDSA, keys.RS256, keys.PS256)}
	if set.Len() == 1 {
		opts = append(opts, keys.WithDefaultKey(set.Keys()[0]))
	}
	v, err := keys.NewVerifier(keys.StaticKeys(set), opts...)
	if err != nil {
		return err
	}
	payload, _, err := v.Verify(ctx, assertion)
	if err != nil {
		return invalidClient(false, "the client assertion does not verify with the client's keys")
	}
	var cl assertionClaims
	if json.Unmarshal(payload, &cl) != nil || cl.ExpiresAt == nil {
		return invalidClient(false, "the client assertion's claims are not valid")
	}
	now := is.now()
	exp := time.Unix(*cl.ExpiresAt, 0)
	switch {
	case cl.Issuer != c.ID || cl.Subject != c.ID:
		return invalidClient(false, "the client assertion is not about this client")
	case !slices.Contains(cl.Audience, is.url) && !slices.Contains(cl.Audience, is.TokenEndpoint()):
		return invalidClient(false, "the client assertion's aud must name this issuer or its token endpoint")
	case !now.Before(exp.Add(skew)):
		return invalidClient(false, "the client assertion has expired")
	case exp.Sub(now) > is.cfg.AssertionMaxAge+skew:
		return invalidClient(false, "the client assertion's exp is more than %s ahead", is.cfg.AssertionMaxAge)
	case cl.NotBefore != nil && now.Add(skew).Before(time.Unix(*cl.NotBefore, 0)):
		return invalidClient(false, "the client assertion is not valid yet")
	}
	err = is.store.UseOnce(ctx, "assertion|"+c.ID+"|"+cl.JTI, exp.Add(skew))
	if errors.Is(err, ErrReplay) {
		return invalidClient(false, "the client assertion was used before")
	}
	return err
}

// skew is the clock difference tolerated in client assertions and DPoP proofs.
const skew = 60 * time.Second
