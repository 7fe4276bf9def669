package issuer

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// newRefresh stores and returns a refresh token bound to node and client: it mints tokens for the given
// resources, within scopes, until the node expires (spec/agent-auth.md §2.4).
func (is *Issuer) newRefresh(ctx context.Context, node *Node, c *Client, scopes, resources []string, jkt, parentJTI string) (string, error) {
	value := "r_" + newSecret()
	err := is.store.PutRefresh(ctx, &Refresh{Hash: hashSecret(value), NodeID: node.ID, ClientID: c.ID, Scopes: scopes,
		Resources: resources, JKT: jkt, ParentJTI: parentJTI, IssuedAt: is.now(), ExpiresAt: node.ExpiresAt})
	return value, err
}

// refreshToken is the RFC 6749 §6 grant, bound to its node: a token for another of the node's resources, in the
// same node (no extra depth), with a new refresh token in the answer. A refresh token used twice is a theft
// signal: its node is revoked (RFC 9700 §4.14.2).
func (is *Issuer) refreshToken(ctx context.Context, c *Client, req *TokenRequest, jkt string) (*TokenResponse, error) {
	now := is.now()
	hash := hashSecret(req.RefreshToken)
	old, err := is.store.Refresh(ctx, hash)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, invalidGrant("the refresh token is not valid")
	case err != nil:
		return nil, err
	case old.ClientID != c.ID:
		return nil, invalidGrant("the refresh token was issued to another client")
	case old.Used:
		return nil, is.refreshReused(ctx, old)
	case !now.Before(old.ExpiresAt):
		return nil, invalidGrant("the refresh token has expired")
	case old.JKT != "" && old.JKT != jkt:
		return nil, invalidDPoP("the refresh token is bound to a DPoP key; prove possession of it")
	}
	node, err := is.store.Node(ctx, old.NodeID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, invalidGrant("the refresh token's session is unknown")
		}
		return nil, err
	}
	if !node.Active(now) {
		return nil, invalidGrant("the refresh token's session was revoked or has expired")
	}
	scopes := req.Scopes
	if scopes == nil {
		scopes = old.Scopes
	}
	for _, s := range scopes {
		if !slices.Contains(old.Scopes, s) {
			return nil, invalidScope("scope %s was not granted to this refresh token", s)
		}
	}
	asked := append(slices.Clone(req.Resources), req.Audiences...)
	if len(asked) != 1 {
		return nil, invalidTarget("ask for exactly one of the refresh token's resources")
	}
	if !slices.Contains(old.Resources, asked[0]) {
		return nil, invalidTarget("resource %s was not granted to this refresh token", asked[0])
	}
	if old.ParentJTI != "" {
		st, err := is.store.Standing(ctx, Query{JTI: old.ParentJTI})
		if err != nil {
			return nil, err
		}
		if st.Revoked != "" {
			return nil, invalidGrant("the token this delegation was made from was revoked")
		}
	}
	bind := old.JKT
	if bind == "" {
		bind = jkt // an unbound refresh token may still get a bound access token (RFC 9449 §5)
	}
	// Mint first: a refusal must not use up the refresh token.
	resp, _, err := is.mint(ctx, mintRequest{node: node, client: c, audience: asked[0], scopes: scopes, jkt: bind,
		parentJTI: old.ParentJTI, notAfter: node.ExpiresAt, ttl: is.ttlAt(node.Depth, c)})
	if err != nil {
		return nil, err
	}
	value := "r_" + newSecret()
	next := *old
	next.Hash, next.IssuedAt, next.Used = hashSecret(value), now, false
	if _, err := is.store.RotateRefresh(ctx, hash, &next); err != nil {
		if errors.Is(err, ErrReplay) {
			return nil, is.refreshReused(ctx, old) // a concurrent use of the same token won
		}
		return nil, fmt.Errorf("issuer: rotate refresh token: %w", err)
	}
	resp.RefreshToken = value
	resp.IssuedTokenType = TokenTypeAccessToken
	return resp, nil
}

// refreshReused revokes the node of a refresh token presented a second time by its own client: one of the two
// holders stole it (RFC 9700 §4.14.2).
func (is *Issuer) refreshReused(ctx context.Context, old *Refresh) error {
	if _, err := is.Revoke(ctx, Op{ID: "node:" + old.NodeID, Kind: OpRevokeNode, SID: old.NodeID, Initiator: "system",
		Reason: "refresh token reused"}); err != nil {
		return err
	}
	return invalidGrant("the refresh token was used before; its session is revoked")
}
