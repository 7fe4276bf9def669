package issuer

import (
	"context"
	"errors"
	"slices"
	"time"
)

// tokenExchange is the RFC 8693 grant: one hop of delegation, validated as spec/agent-auth.md §2.4 says, all
// against the authoritative store. The caller (the authenticated client) becomes the actor.
func (is *Issuer) tokenExchange(ctx context.Context, actor *Client, req *TokenRequest, jkt string) (*TokenResponse, error) {
	if req.SubjectTokenType != TokenTypeAccessToken && req.SubjectTokenType != TokenTypeJWT {
		return nil, invalidRequest("subject_token_type must be %s: only this issuer's access tokens can be exchanged", TokenTypeAccessToken)
	}
	if req.RequestedTokenType != "" && req.RequestedTokenType != TokenTypeAccessToken {
		return nil, invalidRequest("requested_token_type must be %s", TokenTypeAccessToken)
	}
	// 1. The subject token: ours, unexpired, and not revoked anywhere along its path.
	subject, kid, err := is.parse(ctx, req.SubjectToken)
	if err != nil {
		return nil, invalidGrant("the subject token is not a valid access token of this issuer")
	}
	now := is.now()
	if subject.ExpiresAt <= now.Unix() {
		return nil, invalidGrant("the subject token has expired")
	}
	if subject.SID == "" {
		return nil, invalidGrant("the subject token is not part of a session and cannot be exchanged")
	}
	st, err := is.store.Standing(ctx, Query{JTI: subject.JTI, Path: subject.Path(), Keys: subject.Keys(kid),
		IssuedAt: time.Unix(subject.IssuedAt, 0)})
	if err != nil {
		return nil, err
	}
	if st.Revoked != "" {
		return nil, invalidGrant("the subject token or one of its ancestors was revoked")
	}
	// 2. Addressed to the caller.
	if !slices.Contains(subject.Audience, actor.ID) {
		return nil, invalidGrant("the subject token is not addressed to the caller")
	}
	if err := is.checkActorToken(ctx, actor, req); err != nil {
		return nil, err
	}
	// 3. The caller may act for the subject token's holder.
	if err := is.mayAct(ctx, actor, subject); err != nil {
		return nil, err
	}
	parent, err := is.store.Node(ctx, subject.SID)
	if errors.Is(err, ErrNotFound) {
		return nil, invalidGrant("the subject token's session is unknown")
	}
	if err != nil {
		return nil, err
	}
	if !parent.Active(now) {
		return nil, invalidGrant("the subject token's session was revoked or has expired")
	}
	if actor.Tenant != parent.Tenant {
		return nil, invalidGrant("the caller belongs to another tenant than the session")
	}
	// 5. Narrowing: scope and resource are asked for explicitly and only narrow.
	if len(req.Scopes) == 0 {
		return nil, invalidScope("scope is required: an exchange never inherits scopes")
	}
	for _, s := range req.Scopes {
		if !slices.Contains(subject.Scopes(), s) || !slices.Contains(actor.Scopes, s) {
			return nil, invalidScope("scope %s is not in the subject token or not allowed for the caller", s)
		}
	}
	asked := append(slices.Clone(req.Resources), req.Audiences...)
	if len(asked) == 0 {
		return nil, invalidTarget("resource (or audience) is required")
	}
	if len(asked) > 1 && !slices.Contains(actor.GrantTypes, GrantRefreshToken) {
		return nil, invalidTarget("ask for one resource, or register the refresh_token grant to get tokens for several")
	}
	ceiling := intersect(parent.Resources, actor.Resources)
	for _, r := range asked {
		if !slices.Contains(ceiling, r) {
			return nil, invalidTarget("resource %s is not within the session's and the caller's resources", r)
		}
	}
	// 7. Binding: a sender-constrained parent requires a sender-constrained child.
	if subject.Cnf != nil && jkt == "" {
		return nil, invalidDPoP("the subject token is sender-constrained: a DPoP proof is required")
	}
	if is.cfg.RequireDPoP && jkt == "" {
		return nil, invalidDPoP("this issuer requires a DPoP proof")
	}
	// 4. Depth: a new actor is one hop deeper; the same actor asking for another audience stays in its node.
	node := parent
	if currentActor(parent) != actor.ID {
		limit := is.depthCap(actor, parent.MaxDepth)
		if parent.Depth+1 > limit {
			return nil, invalidRequest(DepthExceeded)
		}
		node = is.childNode(parent, actor, req.Scopes, ceiling, jkt, now)
		if _, err := is.standing(ctx, parent.Path, node.Keys()); err != nil {
			return nil, err // blocked or revoked: refused before anything is written
		}
		if err := is.store.CreateNode(ctx, node); err != nil {
			if errors.Is(err, ErrRevoked) || errors.Is(err, ErrNotFound) {
				return nil, invalidGrant("the subject token's session was revoked")
			}
			return nil, err
		}
	} else if node.JKT != "" && node.JKT != jkt {
		return nil, invalidDPoP("the DPoP key is not the one this session is bound to")
	}
	// 6. Lifetime: never beyond the parent token or the node.
	notAfter := time.Unix(subject.ExpiresAt, 0)
	if node.ExpiresAt.Before(notAfter) {
		notAfter = node.ExpiresAt
	}
	resp, _, err := is.mint(ctx, mintRequest{node: node, client: actor, audience: asked[0], scopes: req.Scopes, jkt: jkt,
		parentJTI: subject.JTI, notAfter: notAfter, ttl: is.ttlAt(node.Depth, actor)})
	if err != nil {
		return nil, err
	}
	resp.IssuedTokenType = TokenTypeAccessToken
	if len(asked) > 1 && node.Kind == NodeDelegated {
		if resp.RefreshToken, err = is.newRefresh(ctx, node, actor, req.Scopes, asked, jkt, subject.JTI); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// currentActor is the actor of a node's tokens: the first of its act chain, the client of a workload root, and
// nobody for a human root (whose token is addressed to the first agent).
func currentActor(n *Node) string {
	switch {
	case len(n.Actors) > 0:
		return n.Actors[0]
	case n.Kind == NodeWorkload:
		return n.ClientID
	}
	return ""
}

// childNode builds the node of one delegation hop below parent.
func (is *Issuer) childNode(parent *Node, actor *Client, scopes, resources []string, jkt string, now time.Time) *Node {
	sid := newID("s_")
	exp := min(now.Add(is.cfg.SessionTTL).UnixNano(), parent.ExpiresAt.UnixNano())
	actors := append([]string{actor.ID}, parent.Actors...)
	if parent.Kind == NodeWorkload && len(parent.Actors) == 0 {
		actors = append(actors, parent.ClientID)
	}
	return &Node{
		ID: sid, Kind: NodeDelegated, Parent: parent.ID, Path: append(slices.Clone(parent.Path), sid),
		Depth: parent.Depth + 1, MaxDepth: is.depthCap(actor, parent.MaxDepth), Tenant: parent.Tenant,
		Principal: parent.Principal, ClientID: actor.ID, Actors: actors, Class: actor.Class, JKT: jkt,
		Scopes: slices.Clone(scopes), Resources: resources, ACR: parent.ACR, AMR: parent.AMR, AuthTime: parent.AuthTime,
		CreatedAt: now, ExpiresAt: time.Unix(0, exp),
	}
}

// mayAct checks that the actor may act for the subject token's holder: named by its may_act, or listed among
// the actors of the client the subject token was issued to.
func (is *Issuer) mayAct(ctx context.Context, actor *Client, subject *Claims) error {
	if subject.MayAct != nil {
		if subject.MayAct.Subject != actor.ID {
			return invalidGrant("the subject token's may_act does not name the caller")
		}
		return nil
	}
	if subject.ClientID == actor.ID {
		return nil
	}
	holder, err := is.store.Client(ctx, subject.ClientID)
	if errors.Is(err, ErrNotFound) {
		return invalidGrant("the subject token's client is no longer registered")
	}
	if err != nil {
		return err
	}
	if !slices.Contains(holder.Actors, actor.ID) {
		return invalidGrant("the caller is not allowed to act for %s", subject.ClientID)
	}
	return nil
}

// checkActorToken accepts an actor_token only when it is one of our access tokens issued to the caller: it must
// name the same identity the client authenticated as (spec/agent-auth.md §2.4 (b)).
func (is *Issuer) checkActorToken(ctx context.Context, actor *Client, req *TokenRequest) error {
	if req.ActorToken == "" {
		return nil
	}
	if req.ActorTokenType != TokenTypeAccessToken && req.ActorTokenType != TokenTypeJWT {
		return invalidRequest("actor_token_type must be %s", TokenTypeAccessToken)
	}
	c, err := is.VerifyAccessToken(ctx, req.ActorToken)
	if err != nil || c.ClientID != actor.ID {
		return invalidRequest("the actor token is not a valid token of the authenticated client")
	}
	return nil
}

// intersect returns the elements of a that are also in b, in a's order.
func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
