package issuer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// SessionRequest opens a human root session for an agent (spec/agent-auth.md §6.3: until root sessions come from
// an external IdP's token, operators and tests open them through the API). The answer holds a token addressed to
// the agent, with may_act naming it, that the agent exchanges for its first delegated token.
type SessionRequest struct {
	// User is the human principal as its IdP names it.
	User Principal `json:"user"`
	// Agent is the client_id of the agent the human delegates to.
	Agent string `json:"agent"`
	// Scopes and Resources are the ceiling of the whole tree.
	Scopes    []string `json:"scope"`
	Resources []string `json:"resources"`
	// MaxDepth caps delegation in the tree (default: the issuer's).
	MaxDepth int `json:"max_depth,omitempty"`
	// TTL is the session's life in seconds (default: the issuer's session TTL).
	TTL Seconds `json:"ttl,omitempty"`
	// ACR, AMR and AuthTime describe how the human authenticated; they travel in every token of the tree.
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
}

// Session is an opened root session: its node and the token for the agent.
type Session struct {
	Node  *Node          `json:"session"`
	Token *TokenResponse `json:"token"`
}

// OpenSession creates a user root node and a token addressed to the agent.
func (is *Issuer) OpenSession(ctx context.Context, r SessionRequest) (*Session, error) {
	if u, err := url.Parse(r.User.Issuer); err != nil || !u.IsAbs() || u.Host == "" || len(r.User.Issuer) > maxValue {
		return nil, invalidRequest("user.iss must be the absolute URL of the user's identity provider")
	}
	if err := checkText(r.User.Subject, maxValue); err != nil {
		return nil, invalidRequest("user.sub %s", err.Error())
	}
	if r.ACR != "" {
		if err := checkText(r.ACR, 256); err != nil {
			return nil, invalidRequest("acr %s", err.Error())
		}
	}
	agent, err := is.store.Client(ctx, r.Agent)
	if errors.Is(err, ErrNotFound) {
		return nil, invalidRequest("agent %q is not a registered client", r.Agent)
	}
	if err != nil {
		return nil, err
	}
	if agent.Disabled {
		return nil, invalidRequest("agent %s is disabled", agent.ID)
	}
	if len(r.Scopes) == 0 || len(r.Resources) == 0 {
		return nil, invalidRequest("scope and resources are required: they are the ceiling of the session")
	}
	if _, err := ParseScope(strings.Join(r.Scopes, " ")); err != nil {
		return nil, err
	}
	for _, res := range r.Resources {
		if err := checkResource(res); err != nil {
			return nil, err
		}
	}
	if r.MaxDepth < 0 || r.MaxDepth > HardMaxDepth {
		return nil, invalidRequest("max_depth must be between 0 (the default) and %d", HardMaxDepth)
	}
	now := is.now()
	ttl := is.cfg.SessionTTL
	if r.TTL > 0 {
		ttl = min(ttl, r.TTL.Duration())
	}
	maxDepth := is.cfg.MaxDelegationDepth
	if r.MaxDepth > 0 {
		maxDepth = r.MaxDepth
	}
	sid := newID("s_")
	n := &Node{ID: sid, Kind: NodeUser, Path: []string{sid}, MaxDepth: maxDepth, Tenant: agent.Tenant, Principal: r.User,
		ClientID: agent.ID, Scopes: slices.Clone(r.Scopes), Resources: slices.Clone(r.Resources), ACR: r.ACR, AMR: r.AMR,
		AuthTime: r.AuthTime, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := is.store.CreateNode(ctx, n); err != nil {
		return nil, fmt.Errorf("issuer: store session: %w", err)
	}
	resp, _, err := is.mint(ctx, mintRequest{node: n, client: agent, audience: agent.ID, scopes: r.Scopes, mayAct: agent.ID,
		notAfter: n.ExpiresAt, ttl: is.cfg.AccessTokenTTL})
	if err != nil {
		return nil, err
	}
	return &Session{Node: n, Token: resp}, nil
}

// Tree returns the node sid and its descendants, parents first.
func (is *Issuer) Tree(ctx context.Context, sid string) ([]*Node, error) {
	nodes, err := is.store.Subtree(ctx, sid)
	if errors.Is(err, ErrNotFound) {
		return nil, oauthError(404, CodeNotFound, "no session %s", sid)
	}
	return nodes, err
}
