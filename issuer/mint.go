package issuer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
)

// TokenResponse is the token endpoint's answer (RFC 6749 §5.1, RFC 8693 §2.2.1).
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
	RefreshToken    string `json:"refresh_token,omitempty"`
}

// mintRequest is what a grant decided: everything the token says.
type mintRequest struct {
	node      *Node // nil for SSF management tokens
	client    *Client
	audience  string
	scopes    []string
	jkt       string
	parentJTI string
	mayAct    string
	notAfter  time.Time // the token never outlives it (parent token, node)
	ttl       time.Duration
}

// mint signs an access token. Its iat is after every watermark on its keys (spec/agent-auth.md §3.2 rule 1), and
// its keys must not be blocked; both are read in one store call, after the grant's own checks.
func (is *Issuer) mint(ctx context.Context, m mintRequest) (*TokenResponse, *Claims, error) {
	now := is.now().Truncate(time.Second)
	c := &Claims{
		Issuer: is.url, Audience: schemas.Audience{m.audience}, ClientID: m.client.ID, JTI: newID("t_"),
		Scope: strings.Join(m.scopes, " "), Tenant: m.client.Tenant, AgentClass: m.client.Class,
	}
	if m.node != nil {
		n := m.node
		c.Subject, c.SID, c.Tenant = n.Principal.Subject, n.ID, n.Tenant
		if n.Principal.Issuer != is.url {
			c.SubjectIssuer = n.Principal.Issuer
		}
		c.Act = actorChain(n.Actors)
		c.Delegation = &Delegation{Depth: n.Depth, MaxDepth: n.MaxDepth, Path: n.Path, ParentJTI: m.parentJTI}
		c.ACR, c.AMR, c.AuthTime = n.ACR, n.AMR, n.AuthTime
		if n.Class != "" {
			c.AgentClass = n.Class
		}
	} else {
		c.Subject = m.client.ID
	}
	if m.mayAct != "" {
		c.MayAct = &Actor{Subject: m.mayAct}
	}
	if m.jkt != "" {
		c.Cnf = &Confirmation{JKT: m.jkt}
	}
	st, err := is.standing(ctx, c.Path(), c.Keys(""))
	if err != nil {
		return nil, nil, err
	}
	iat := now
	if !st.LatestMark.IsZero() && !iat.After(st.LatestMark) {
		iat = st.LatestMark.Truncate(time.Second).Add(time.Second)
	}
	exp := iat.Add(m.ttl)
	if !m.notAfter.IsZero() && exp.After(m.notAfter) {
		exp = m.notAfter.Truncate(time.Second)
	}
	if !exp.After(now) {
		return nil, nil, invalidGrant("the session or parent token has expired")
	}
	c.IssuedAt, c.ExpiresAt = iat.Unix(), exp.Unix()
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, nil, err
	}
	tok, err := is.signer.Sign(payload, keys.TypeAccessToken)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: sign: %w", err)
	}
	resp := &TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: c.ExpiresAt - now.Unix(), Scope: c.Scope}
	if m.jkt != "" {
		resp.TokenType = "DPoP"
	}
	return resp, c, nil
}

// standing reads the revocation standing of a token about to be minted (its node path and its keys, the signing
// key included) and refuses a revoked path, a blocked key and a withdrawn signing key.
func (is *Issuer) standing(ctx context.Context, path []string, keys []MarkKey) (Standing, error) {
	kid := is.signer.Active().ID()
	keys = append(keys, MarkKey{MarkSigningKey, kid})
	st, err := is.store.Standing(ctx, Query{Path: path, Keys: keys})
	if err != nil {
		return st, err
	}
	switch {
	case st.Revoked != "":
		return st, invalidGrant("the session was revoked")
	case !st.Blocked.IsZero():
		return st, invalidGrant("new tokens for %s %s are disabled", st.Blocked.Kind, st.Blocked.Value)
	case st.LatestMark.After(is.now().Add(MaxAccessTokenTTL)):
		// Only a withdrawn signing key has a watermark in the future.
		return st, &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
			Description: "the access-token signing key was withdrawn; the keys must be rotated"}
	}
	return st, nil
}

// ttlAt is the access-token lifetime for a node depth and a client's cap.
func (is *Issuer) ttlAt(depth int, c *Client) time.Duration {
	ttl := is.cfg.AccessTokenTTL
	if depth >= 2 {
		ttl = is.cfg.DelegatedTokenTTL
	}
	if c.TokenTTL > 0 {
		ttl = min(ttl, c.TokenTTL.Duration())
	}
	return ttl
}

// depthCap is the deepest node a client may act in under a parent allowing parentMax.
func (is *Issuer) depthCap(c *Client, parentMax int) int {
	limit := is.cfg.MaxDelegationDepth
	if c.MaxDelegationDepth > 0 {
		limit = c.MaxDelegationDepth
	}
	limit = min(limit, HardMaxDepth)
	if parentMax > 0 {
		limit = min(limit, parentMax)
	}
	return limit
}
