package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
)

// The issuer's HTTP paths (DESIGN.md, HTTP surface). Metadata lives at the well-known path with the issuer's
// path appended (RFC 8414 §3.1).
const (
	WellKnownPath   = "/.well-known/oauth-authorization-server"
	PathToken       = "/oauth/token"
	PathIntrospect  = "/oauth/introspect"
	PathRevoke      = "/oauth/revoke"
	PathJWKS        = "/oauth/jwks"
	PathClients     = "/api/v1/clients"
	PathSessions    = "/api/v1/sessions"
	PathRevocations = "/api/v1/revocations"
)

// ScopeAdmin is the scope of the issuer's management API: clients, sessions and revocations.
const ScopeAdmin = "ssfd.admin"

// maxForm bounds a token, introspection or revocation request body.
const maxForm = 64 << 10

// Metadata is the RFC 8414 authorization server metadata, computed from the grants and client authentication
// methods the issuer implements.
type Metadata struct {
	Issuer                           string   `json:"issuer"`
	TokenEndpoint                    string   `json:"token_endpoint"`
	JWKSURI                          string   `json:"jwks_uri"`
	IntrospectionEndpoint            string   `json:"introspection_endpoint"`
	RevocationEndpoint               string   `json:"revocation_endpoint"`
	GrantTypesSupported              []string `json:"grant_types_supported"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	TokenEndpointAuthMethods         []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgs     []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthSigning []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthMethods    []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigning    []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	DPoPSigningAlgs                  []string `json:"dpop_signing_alg_values_supported"`
	ScopesSupported                  []string `json:"scopes_supported"`
}

// assertionAlgs are the algorithms accepted for private_key_jwt client assertions.
var assertionAlgs = []string{"ES256", "EdDSA", "RS256", "PS256"}

// Metadata returns the RFC 8414 document. scopes_supported lists the scopes the issuer itself gives meaning to;
// clients may be registered with any others.
func (is *Issuer) Metadata() Metadata {
	dpop := make([]string, 0, len(keys.DPoPAlgorithms))
	for _, a := range keys.DPoPAlgorithms {
		dpop = append(dpop, string(a))
	}
	return Metadata{
		Issuer: is.url, TokenEndpoint: is.url + PathToken, JWKSURI: is.url + PathJWKS,
		IntrospectionEndpoint: is.url + PathIntrospect, RevocationEndpoint: is.url + PathRevoke,
		GrantTypesSupported: GrantTypes(), ResponseTypesSupported: []string{},
		TokenEndpointAuthMethods: AuthMethods(), IntrospectionEndpointAuthMethods: AuthMethods(),
		RevocationEndpointAuthMethods:    AuthMethods(),
		TokenEndpointAuthSigningAlgs:     assertionAlgs,
		IntrospectionEndpointAuthSigning: assertionAlgs,
		RevocationEndpointAuthSigning:    assertionAlgs,
		DPoPSigningAlgs:                  dpop,
		ScopesSupported:                  append(slices.Clone(SSFScopes), ScopeAdmin),
	}
}

// basePath is the path of the issuer URL: the OAuth endpoints live below it.
func (is *Issuer) basePath() string {
	u, _ := url.Parse(is.url)
	return strings.TrimSuffix(u.Path, "/")
}

// Register adds the issuer's routes to e: metadata (at the well-known path with the issuer's path appended,
// RFC 8414 §3.1), JWKS and the OAuth endpoints below the issuer's path (authenticated by client credentials), and
// the management API at /api/v1 behind admin, a middleware that requires ScopeAdmin.
func (is *Issuer) Register(e *echo.Echo, admin echo.MiddlewareFunc) {
	base := is.basePath()
	e.GET(WellKnownPath+base, func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		return c.JSON(http.StatusOK, is.Metadata())
	})
	e.GET(base+PathJWKS, func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		c.Response().Header().Set(echo.HeaderContentType, "application/jwk-set+json")
		data, err := json.Marshal(is.signer.JWKS())
		if err != nil {
			return is.fail(c, err)
		}
		return c.Blob(http.StatusOK, "application/jwk-set+json", data)
	})
	e.POST(base+PathToken, is.handleToken)
	e.POST(base+PathIntrospect, is.handleIntrospect)
	e.POST(base+PathRevoke, is.handleRevoke)
	// Route middleware, not a group: a group with middleware adds catch-all routes that would turn every 405
	// of the server into a 404.
	e.POST(PathClients, is.handleRegister, admin)
	e.GET(PathClients, is.handleListClients, admin)
	e.GET(PathClients+"/*", is.handleGetClient, admin)
	e.PATCH(PathClients+"/*", is.handlePatchClient, admin)
	e.POST(PathSessions, is.handleOpenSession, admin)
	e.GET(PathSessions+"/:sid", is.handleTree, admin)
	e.POST(PathRevocations, is.handleRevocation, admin)
	e.GET(PathRevocations, is.handleListOps, admin)
}

// fail writes err as an OAuth error; anything that is not an *Error is logged and answered 500 server_error
// without detail.
func (is *Issuer) fail(c echo.Context, err error) error {
	var oe *Error
	if !errors.As(err, &oe) {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		if is.unavailable != nil && is.unavailable(err) {
			is.log.Warn("issuer request failed: the store is unavailable", "path", c.Path(), "err", err)
			c.Response().Header().Set("Retry-After", "1")
			oe = &Error{Status: http.StatusServiceUnavailable, Code: CodeTemporarilyUnavailable,
				Description: "storage is unavailable for a moment; try again"}
		} else {
			is.log.Error("issuer request failed", "path", c.Path(), "err", err)
			oe = &Error{Status: http.StatusInternalServerError, Code: CodeServerError, Description: "internal error"}
		}
	}
	if oe.Challenge != "" {
		c.Response().Header().Set("WWW-Authenticate", oe.Challenge)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(oe.Status, oe)
}

// readForm reads an application/x-www-form-urlencoded body of at most maxForm bytes; parameters in the query
// are refused so that credentials never travel in URLs.
func readForm(r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, invalidRequest("the body must be application/x-www-form-urlencoded")
	}
	if r.URL.RawQuery != "" {
		return nil, invalidRequest("parameters go in the body, not the query")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return nil, invalidRequest("the body is not a form of at most %d bytes", maxForm)
	}
	return r.PostForm, nil
}

// client authenticates the caller of the introspection and revocation endpoints with the token endpoint's
// methods.
func (is *Issuer) client(r *http.Request, form url.Values) (*Client, error) {
	req := &TokenRequest{ClientID: form.Get("client_id"), ClientSecret: form.Get("client_secret"),
		AssertionType: form.Get("client_assertion_type"), Assertion: form.Get("client_assertion")}
	if (req.Assertion == "") != (req.AssertionType == "") || req.AssertionType != "" && req.AssertionType != AssertionTypeJWTBearer {
		return nil, invalidRequest("client_assertion_type must be %s, with client_assertion", AssertionTypeJWTBearer)
	}
	cr, err := credentialsFrom(r, req)
	if err != nil {
		return nil, err
	}
	return is.authenticate(r.Context(), cr)
}

func (is *Issuer) handleToken(c echo.Context) error {
	start := time.Now()
	resp, grant, err := is.token(c.Request())
	if is.observe != nil {
		outcome := "issued"
		var oe *Error
		switch {
		case errors.As(err, &oe):
			outcome = oe.Code
		case err != nil:
			outcome = CodeServerError
		}
		is.observe(grant, outcome, time.Since(start))
	}
	if err != nil {
		return is.fail(c, err)
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, resp)
}

// token runs one token request: parse, authenticate the client, check the grant is allowed to it, verify the
// DPoP proof, then the grant. It also returns the grant type, "invalid" when the request did not parse.
func (is *Issuer) token(r *http.Request) (*TokenResponse, string, error) {
	ctx := r.Context()
	form, err := readForm(r)
	if err != nil {
		return nil, "invalid", err
	}
	req, err := ParseTokenRequest(form)
	if err != nil {
		return nil, "invalid", err
	}
	resp, err := is.grant(ctx, r, req)
	return resp, req.GrantType, err
}

// grant authenticates the client of a parsed request and runs its grant.
func (is *Issuer) grant(ctx context.Context, r *http.Request, req *TokenRequest) (*TokenResponse, error) {
	cr, err := credentialsFrom(r, req)
	if err != nil {
		return nil, err
	}
	client, err := is.authenticate(ctx, cr)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(client.GrantTypes, req.GrantType) {
		return nil, unauthorizedClient("the client may not use grant %s", req.GrantType)
	}
	jkt, err := is.checkDPoP(ctx, r)
	if err != nil {
		return nil, err
	}
	switch req.GrantType {
	case GrantClientCredentials:
		return is.clientCredentials(ctx, client, req, jkt)
	case GrantTokenExchange:
		return is.tokenExchange(ctx, client, req, jkt)
	default:
		return is.refreshToken(ctx, client, req, jkt)
	}
}

func (is *Issuer) handleIntrospect(c echo.Context) error {
	r := c.Request()
	form, err := readForm(r)
	if err != nil {
		return is.fail(c, err)
	}
	caller, err := is.client(r, form)
	if err != nil {
		return is.fail(c, err)
	}
	if !caller.Introspection {
		return is.fail(c, oauthError(http.StatusForbidden, CodeUnauthorizedClient,
			"the client may not introspect tokens: register it with introspection"))
	}
	if form.Get("token") == "" {
		return is.fail(c, invalidRequest("token is required (RFC 7662 §2.1)"))
	}
	out, err := is.Introspect(r.Context(), form.Get("token"))
	if err == nil && out["active"] == true && out["tenant"] != caller.Tenant {
		out = map[string]any{"active": false} // tokens of other tenants are none of its business
	}
	if err != nil {
		return is.fail(c, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

func (is *Issuer) handleRevoke(c echo.Context) error {
	r := c.Request()
	form, err := readForm(r)
	if err != nil {
		return is.fail(c, err)
	}
	caller, err := is.client(r, form)
	if err != nil {
		return is.fail(c, err)
	}
	token := form.Get("token")
	if token == "" {
		return is.fail(c, invalidRequest("token is required (RFC 7009 §2.1)"))
	}
	if strings.HasPrefix(token, "r_") {
		err = is.revokeRefresh(r.Context(), caller, token)
	} else {
		err = is.RevokeToken(r.Context(), caller, token)
	}
	if err != nil {
		return is.fail(c, err)
	}
	return c.NoContent(http.StatusOK)
}

// revokeRefresh revokes a refresh token's node and subtree (spec/agent-auth.md §2.6); unknown tokens change
// nothing.
func (is *Issuer) revokeRefresh(ctx context.Context, caller *Client, token string) error {
	rt, err := is.store.Refresh(ctx, hashSecret(token))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if rt.ClientID != caller.ID {
		is.log.Info("revocation refused: not the refresh token's client", "client_id", caller.ID)
		return nil
	}
	_, err = is.Revoke(ctx, Op{ID: "node:" + rt.NodeID, Kind: OpRevokeNode, SID: rt.NodeID, Initiator: "user",
		Reason: "refresh token revoked by its client"})
	return err
}

// decodeJSON reads a JSON body of at most 1 MiB into v, refusing unknown fields.
func decodeJSON(c echo.Context, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, c.Request().Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidRequest("the body is not valid JSON for this request: %s", schemas.DescribeJSONError(err))
	}
	return nil
}

func (is *Issuer) handleRegister(c echo.Context) error {
	var req ClientRequest
	if err := decodeJSON(c, &req); err != nil {
		return is.fail(c, err)
	}
	out, err := is.RegisterClient(c.Request().Context(), req)
	if err != nil {
		return is.fail(c, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, Registered{Client: out.Client.Redacted(), Secret: out.Secret})
}

func (is *Issuer) handleListClients(c echo.Context) error {
	list, err := is.store.Clients(c.Request().Context())
	if err != nil {
		return is.fail(c, err)
	}
	out := make([]*Client, 0, len(list))
	for _, cl := range list {
		out = append(out, cl.Redacted())
	}
	return c.JSON(http.StatusOK, map[string]any{"clients": out})
}

// clientParam is the client id after /api/v1/clients/, which may hold slashes (SPIFFE IDs) and escapes.
func clientParam(c echo.Context) string {
	id := c.Param("*")
	if u, err := url.PathUnescape(id); err == nil {
		id = u
	}
	return id
}

func (is *Issuer) handleGetClient(c echo.Context) error {
	id := clientParam(c)
	cl, err := is.store.Client(c.Request().Context(), id)
	if errors.Is(err, ErrNotFound) {
		return is.fail(c, oauthError(http.StatusNotFound, CodeNotFound, "no client %s", id))
	}
	if err != nil {
		return is.fail(c, err)
	}
	return c.JSON(http.StatusOK, cl.Redacted())
}

// clientPatch is what PATCH /api/v1/clients/{id} may change.
type clientPatch struct {
	Disabled *bool `json:"disabled"`
}

func (is *Issuer) handlePatchClient(c echo.Context) error {
	var p clientPatch
	if err := decodeJSON(c, &p); err != nil {
		return is.fail(c, err)
	}
	if p.Disabled == nil {
		return is.fail(c, invalidRequest("say {\"disabled\": true} or {\"disabled\": false}"))
	}
	cl, err := is.SetDisabled(c.Request().Context(), clientParam(c), *p.Disabled)
	if err != nil {
		return is.fail(c, err)
	}
	return c.JSON(http.StatusOK, cl.Redacted())
}

func (is *Issuer) handleOpenSession(c echo.Context) error {
	var req SessionRequest
	if err := decodeJSON(c, &req); err != nil {
		return is.fail(c, err)
	}
	s, err := is.OpenSession(c.Request().Context(), req)
	if err != nil {
		return is.fail(c, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, s)
}

func (is *Issuer) handleTree(c echo.Context) error {
	nodes, err := is.Tree(c.Request().Context(), c.Param("sid"))
	if err != nil {
		return is.fail(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"nodes": nodes})
}

// RevocationRequest is the body of POST /api/v1/revocations: exactly one target.
type RevocationRequest struct {
	JTI    string     `json:"jti,omitempty"`
	SID    string     `json:"sid,omitempty"`
	User   *Principal `json:"user,omitempty"`
	Client string     `json:"client,omitempty"`
	Agent  string     `json:"agent,omitempty"`
	Tenant string     `json:"tenant,omitempty"`
	Class  string     `json:"agent_class,omitempty"`
	KeyID  string     `json:"kid,omitempty"`
	Reason string     `json:"reason,omitempty"`
	// Disable also blocks new tokens for a user, client, agent, tenant or class.
	Disable bool `json:"disable,omitempty"`
}

// Target checks that the request names exactly one target and returns it.
func (r RevocationRequest) Target() (Target, error) {
	t := Target{JTI: r.JTI, SID: r.SID, Reason: r.Reason, Disable: r.Disable}
	named := 0
	add := func(ok bool) {
		if ok {
			named++
		}
	}
	add(r.JTI != "")
	add(r.SID != "")
	if r.User != nil {
		add(true)
		if r.User.Issuer == "" || r.User.Subject == "" {
			return t, invalidRequest("user needs iss and sub")
		}
		t.Key = MarkKey{MarkSubject, r.User.Key()}
	}
	for _, k := range []MarkKey{{MarkClient, r.Client}, {MarkActor, r.Agent}, {MarkTenant, r.Tenant}, {MarkClass, r.Class}, {MarkSigningKey, r.KeyID}} {
		if k.Value != "" {
			add(true)
			t.Key = k
		}
	}
	for _, v := range []string{r.JTI, r.SID, t.Key.Value} {
		if v != "" {
			if err := checkText(v, maxValue); err != nil {
				return t, invalidRequest("the target %s", err.Error())
			}
		}
	}
	if r.Reason != "" {
		if err := checkText(r.Reason, maxReason); err != nil {
			return t, invalidRequest("reason %s", err.Error())
		}
	}
	if named != 1 {
		return t, invalidRequest("name exactly one of jti, sid, user, client, agent, tenant, agent_class, kid")
	}
	if r.Disable && t.Key.IsZero() {
		return t, invalidRequest("disable goes with user, client, agent, tenant or agent_class")
	}
	return t, nil
}

func (is *Issuer) handleRevocation(c echo.Context) error {
	var req RevocationRequest
	if err := decodeJSON(c, &req); err != nil {
		return is.fail(c, err)
	}
	t, err := req.Target()
	if err != nil {
		return is.fail(c, err)
	}
	ops, err := is.RevokeTarget(c.Request().Context(), t)
	if err != nil {
		return is.fail(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"ops": ops})
}

func (is *Issuer) handleListOps(c echo.Context) error {
	after, err := strconv.ParseUint(c.QueryParam("after"), 10, 64)
	if c.QueryParam("after") == "" {
		after, err = 0, nil
	}
	if err != nil {
		return is.fail(c, invalidRequest("after must be a sequence number"))
	}
	ops, err := is.store.Ops(c.Request().Context(), after, 1000)
	if err != nil {
		return is.fail(c, err)
	}
	if ops == nil {
		ops = []Op{}
	}
	return c.JSON(http.StatusOK, map[string]any{"ops": ops})
}
