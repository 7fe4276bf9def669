package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/ssfd/ssfd/internal/keys"
)

// ClientRequest registers a client: the fields of Client an operator sets.
type ClientRequest struct {
	ID                 string          `json:"client_id"`
	Name               string          `json:"client_name,omitempty"`
	Tenant             string          `json:"tenant"`
	Class              string          `json:"agent_class,omitempty"`
	GrantTypes         []string        `json:"grant_types,omitempty"`
	Scopes             []string        `json:"scope,omitempty"`
	Resources          []string        `json:"resources,omitempty"`
	MaxDelegationDepth int             `json:"max_delegation_depth,omitempty"`
	Actors             []string        `json:"actors,omitempty"`
	TokenTTL           Seconds         `json:"access_token_ttl,omitempty"`
	AuthMethod         string          `json:"token_endpoint_auth_method,omitempty"`
	JWKS               json.RawMessage `json:"jwks,omitempty"`
	Introspection      bool            `json:"introspection,omitempty"`
}

// Registered is the answer to a registration: the client and, for secret-based methods, its secret, shown
// this once only.
type Registered struct {
	Client *Client `json:"client"`
	Secret string  `json:"client_secret,omitempty"`
}

// maxIDLength bounds client ids (the WIMSE identifier and SPIFFE ID limit).
const maxIDLength = 2048

// CheckClientID validates a client id: a SPIFFE ID (spiffe://trust-domain/path, no query, fragment, port or
// userinfo, at most 2048 bytes), another absolute URI with the same restrictions (wimse://…, https://…), or a
// plain id of printable ASCII without spaces.
func CheckClientID(id string) error {
	switch {
	case id == "":
		return errors.New("is required")
	case len(id) > maxIDLength:
		return fmt.Errorf("is longer than %d bytes", maxIDLength)
	}
	if !strings.Contains(id, ":") {
		for i := 0; i < len(id); i++ {
			if id[i] <= 0x20 || id[i] >= 0x7f {
				return errors.New("must be printable ASCII without spaces")
			}
		}
		return nil
	}
	u, err := url.Parse(id)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return errors.New("must be an absolute URI with a host (a SPIFFE ID such as spiffe://example.org/agent/x) or a plain id without ':'")
	case u.RawQuery != "" || u.Fragment != "" || strings.Contains(id, "?") || strings.Contains(id, "#"):
		return errors.New("must not have a query or fragment")
	case u.User != nil || u.Port() != "":
		return errors.New("must not have userinfo or a port")
	case u.Scheme == "spiffe" && (u.Path == "" || u.Path == "/" || strings.ToLower(u.Host) != u.Host):
		return errors.New("a SPIFFE ID needs a lowercase trust domain and a path")
	}
	return nil
}

// validate checks a registration and builds the client, reporting every problem at once.
func (r ClientRequest) validate(defaultDepth int) (*Client, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if err := CheckClientID(r.ID); err != nil {
		bad("client_id", "%s", err.Error())
	}
	if err := checkText(r.Tenant, 256); err != nil {
		bad("tenant", "%s", err.Error())
	}
	if r.Class != "" {
		if err := checkText(r.Class, 256); err != nil {
			bad("agent_class", "%s", err.Error())
		}
	}
	if r.Name != "" {
		if err := checkText(r.Name, 256); err != nil {
			bad("client_name", "%s", err.Error())
		}
	}
	c := &Client{ID: r.ID, Name: r.Name, Tenant: r.Tenant, Class: r.Class, GrantTypes: r.GrantTypes, Scopes: r.Scopes,
		Resources: r.Resources, MaxDelegationDepth: r.MaxDelegationDepth, Actors: r.Actors, TokenTTL: r.TokenTTL,
		AuthMethod: r.AuthMethod, JWKS: r.JWKS, Introspection: r.Introspection}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{GrantClientCredentials}
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(GrantTypes(), g) {
			bad("grant_types", "%q is not one of %s", g, strings.Join(GrantTypes(), ", "))
		}
	}
	for _, sc := range c.Scopes {
		if toks, err := ParseScope(sc); err != nil || len(toks) != 1 || len(sc) > 256 {
			bad("scope", "%q is not one scope token (RFC 6749 §3.3)", sc)
		}
	}
	for _, res := range c.Resources {
		if checkResource(res) != nil || len(res) > maxValue {
			bad("resources", "%q is not an absolute URI without a fragment", res)
		}
	}
	if c.MaxDelegationDepth < 0 || c.MaxDelegationDepth > HardMaxDepth {
		bad("max_delegation_depth", "%d must be between 0 (the default, %d) and %d", c.MaxDelegationDepth, defaultDepth, HardMaxDepth)
	}
	for _, a := range c.Actors {
		if err := CheckClientID(a); err != nil {
			bad("actors", "%q %s", a, err.Error())
		}
	}
	if c.TokenTTL < 0 || c.TokenTTL.Duration() > MaxAccessTokenTTL {
		bad("access_token_ttl", "%d must be between 0 (the default) and %d seconds", c.TokenTTL, int(MaxAccessTokenTTL.Seconds()))
	}
	if c.AuthMethod == "" {
		c.AuthMethod = AuthClientSecretBasic
		if len(c.JWKS) > 0 {
			c.AuthMethod = AuthPrivateKeyJWT
		}
	}
	switch c.AuthMethod {
	case AuthPrivateKeyJWT:
		if err := checkClientJWKS(c.JWKS); err != nil {
			bad("jwks", "%s", err.Error())
		}
	case AuthClientSecretBasic, AuthClientSecretPost:
		if len(c.JWKS) > 0 {
			bad("jwks", "only private_key_jwt clients register keys")
		}
	default:
		bad("token_endpoint_auth_method", "%q is not one of %s", c.AuthMethod, strings.Join(AuthMethods(), ", "))
	}
	if len(errs) > 0 {
		return nil, invalidRequest("%s", errors.Join(errs...).Error())
	}
	return c, nil
}

// checkClientJWKS requires a JWKS of public keys, at least one usable.
func checkClientJWKS(raw json.RawMessage) error {
	if len(raw) == 0 {
		return errors.New("is required for private_key_jwt")
	}
	var doc struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return errors.New("must be a JWK Set object with a keys array")
	}
	for _, k := range doc.Keys {
		if _, private := k["d"]; private {
			return errors.New("must hold public keys only")
		}
	}
	set, err := keys.ParseJWKS(raw)
	if err != nil || set.Len() == 0 {
		return errors.New("holds no usable signing key (RS256, PS256, ES256 or EdDSA)")
	}
	return nil
}

// RegisterClient validates r and stores the new client. For secret-based methods it makes a secret (256 random bits)
// and returns it once; only its hash is kept.
func (is *Issuer) RegisterClient(ctx context.Context, r ClientRequest) (*Registered, error) {
	c, err := r.validate(is.cfg.MaxDelegationDepth)
	if err != nil {
		return nil, err
	}
	if slices.Contains(is.reserved, c.ID) {
		return nil, oauthError(409, "conflict", "client_id %s is taken by a static token of the configuration", c.ID)
	}
	c.CreatedAt = is.now().UTC()
	out := &Registered{Client: c}
	if c.AuthMethod != AuthPrivateKeyJWT {
		out.Secret = newSecret()
		c.SecretHash = hashSecret(out.Secret)
	}
	if err := is.store.CreateClient(ctx, c); err != nil {
		if errors.Is(err, ErrExists) {
			return nil, oauthError(409, "conflict", "client %s is registered already", c.ID)
		}
		return nil, err
	}
	return out, nil
}

// SetDisabled disables or enables a client: a disabled client fails authentication, and no new token names it,
// as the client or anywhere in an act chain (issuance blocks on its client and actor keys); tokens issued before
// stay valid until they expire or are revoked.
func (is *Issuer) SetDisabled(ctx context.Context, id string, disabled bool) (*Client, error) {
	if _, err := is.store.Client(ctx, id); errors.Is(err, ErrNotFound) {
		return nil, oauthError(404, CodeNotFound, "no client %s", id)
	} else if err != nil {
		return nil, err
	}
	kind, reason := OpEnable, "client enabled"
	if disabled {
		kind, reason = OpDisable, "client disabled"
	}
	for _, k := range []MarkKind{MarkClient, MarkActor} {
		if _, err := is.Revoke(ctx, Op{Kind: kind, Key: MarkKey{k, id}, Initiator: "admin", Reason: reason}); err != nil {
			return nil, err
		}
	}
	c, err := is.store.UpdateClient(ctx, id, func(c *Client) error {
		c.Disabled = disabled
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, oauthError(404, CodeNotFound, "no client %s", id)
	}
	return c, err
}

// GrantTypes lists the grants the issuer implements, for metadata and registration.
func GrantTypes() []string {
	return []string{GrantClientCredentials, GrantTokenExchange, GrantRefreshToken}
}

// AuthMethods lists the client authentication methods the issuer implements.
func AuthMethods() []string {
	return []string{AuthPrivateKeyJWT, AuthClientSecretBasic, AuthClientSecretPost}
}
