package issuer

import (
	"context"
	"errors"
	"slices"
)

// SSFScopes are the scopes of the SSF management, poll and intake APIs: tokens that carry only these stay outside
// the session tree (spec/agent-auth.md §2.4 (a)).
var SSFScopes = []string{"ssf.manage", "ssf.read", "ssf.emit", "ssf.manage.poll"}

// isSSFScope reports whether a scope is one of SSFScopes, exactly.
func isSSFScope(s string) bool { return slices.Contains(SSFScopes, s) }

// clientCredentials is the RFC 6749 §4.4 grant for an agent acting as itself: a token whose sub and client_id
// are the client, in the workload-session node of this run (one per client and DPoP key), or, for SSF
// management scopes only, outside the tree.
func (is *Issuer) clientCredentials(ctx context.Context, c *Client, req *TokenRequest, jkt string) (*TokenResponse, error) {
	scopes := req.Scopes
	if scopes == nil {
		scopes = c.Scopes
	}
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return nil, invalidScope("scope %s is not allowed for this client", s)
		}
	}
	resource, err := oneResource(c, req.Resources, req.Audiences)
	if err != nil {
		return nil, err
	}
	m := mintRequest{client: c, audience: resource, scopes: scopes, jkt: jkt, ttl: is.ttlAt(0, c)}
	if onlySSFScopes(scopes) {
		if jkt != "" {
			return nil, invalidRequest("SSF management tokens are bearer tokens: send no DPoP proof for them")
		}
		resp, _, err := is.mint(ctx, m)
		return resp, err
	}
	if is.cfg.RequireDPoP && jkt == "" {
		return nil, invalidDPoP("this issuer requires a DPoP proof")
	}
	if m.node, err = is.workloadNode(ctx, c, jkt); err != nil {
		return nil, err
	}
	m.notAfter = m.node.ExpiresAt
	resp, _, err := is.mint(ctx, m)
	return resp, err
}

// onlySSFScopes reports whether scopes are all SSF management scopes (and not empty).
func onlySSFScopes(scopes []string) bool {
	return len(scopes) > 0 && !slices.ContainsFunc(scopes, func(s string) bool { return !isSSFScope(s) })
}

// oneResource picks the audience of a client-credentials token: the one requested resource (or audience), or
// the client's only registered resource.
func oneResource(c *Client, resources, audiences []string) (string, error) {
	asked := append(slices.Clone(resources), audiences...)
	switch {
	case len(asked) > 1:
		return "", invalidTarget("ask for one resource per token")
	case len(asked) == 0 && len(c.Resources) == 1:
		return c.Resources[0], nil
	case len(asked) == 0:
		return "", invalidTarget("resource is required: this client may ask for %d resources", len(c.Resources))
	case !slices.Contains(c.Resources, asked[0]):
		return "", invalidTarget("resource %s is not allowed for this client", asked[0])
	}
	return asked[0], nil
}

// workloadNode returns the active workload node of the client and key, creating one when there is none and
// nothing blocks the client (so a refused request leaves no node behind). Two first requests at once may each
// create one; the newest serves the next requests, and a revocation of the client reaches both.
func (is *Issuer) workloadNode(ctx context.Context, c *Client, jkt string) (*Node, error) {
	now := is.now()
	n, err := is.store.WorkloadNode(ctx, c.ID, jkt, now)
	if err == nil {
		return n, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	sid := newID("s_")
	n = &Node{
		ID: sid, Kind: NodeWorkload, Path: []string{sid}, MaxDepth: is.depthCap(c, 0), Tenant: c.Tenant,
		Principal: Principal{Issuer: is.url, Subject: c.ID}, ClientID: c.ID, Class: c.Class, JKT: jkt,
		Scopes: c.Scopes, Resources: c.Resources, CreatedAt: now, ExpiresAt: now.Add(is.cfg.SessionTTL),
	}
	if _, err := is.standing(ctx, nil, n.Keys()); err != nil {
		return nil, err
	}
	if err := is.store.CreateNode(ctx, n); err != nil {
		return nil, err
	}
	return n, nil
}
