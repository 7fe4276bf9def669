package issuer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// revocationTTL is how long an op matters: every token it can reject has expired by then (the longest access
// token plus clock skew).
const revocationTTL = MaxAccessTokenTTL + 2*skew

// Revoke records op in the revocation log, applies it (cascading through the session tree) and hands it to the
// EventSink. It fills what the caller left out: the id, the decision time on the issuer's clock (whole seconds)
// and the expiry. Repeating an op id changes nothing. Revoke returns once the op is durable; the CAEP events
// follow through the outbox, which survives restarts.
func (is *Issuer) Revoke(ctx context.Context, op Op) (Op, error) {
	if op.ID == "" {
		op.ID = newID("op_")
	}
	if op.At.IsZero() {
		op.At = is.now()
	}
	op.At = op.At.Truncate(time.Second)
	if op.ExpiresAt.IsZero() {
		op.ExpiresAt = op.At.Add(revocationTTL)
	}
	if op.Kind == OpWatermark && op.Key.Kind == MarkSigningKey {
		op.ExpiresAt = op.At.Add(100 * 365 * 24 * time.Hour) // a withdrawn key stays withdrawn
	}
	if err := op.Validate(); err != nil {
		return Op{}, invalidRequest("%s", err.Error())
	}
	if op.Subject == nil && op.Kind == OpRevokeNode {
		if n, err := is.store.Node(ctx, op.SID); err == nil {
			op.Subject = &OpSubject{Principal: n.Principal, ClientID: n.ClientID, Tenant: n.Tenant}
			op.Tenant = n.Tenant
		}
	}
	done, err := is.store.Revoke(ctx, op)
	if err != nil {
		return Op{}, err
	}
	is.log.Info("revocation applied", "op_id", done.ID, "kind", done.Kind, "key", done.Key.String(), "sid", done.SID,
		"nodes", len(done.Nodes))
	is.kickOutbox()
	return done, nil
}

// RevokeToken revokes one access token of this issuer by its value (RFC 7009), after checking that caller may:
// the token's client or any client in its act chain. The token's expiry bounds the op. Unknown, expired or
// foreign tokens change nothing and are not an error (RFC 7009 §2.2).
func (is *Issuer) RevokeToken(ctx context.Context, caller *Client, token string) error {
	c, _, err := is.parse(ctx, token)
	if err != nil {
		if errors.Is(err, ErrInvalidToken) {
			return nil
		}
		return err
	}
	if c.ExpiresAt <= is.now().Unix() {
		return nil
	}
	if caller != nil && caller.ID != c.ClientID && !slices.Contains(c.Actors(), caller.ID) {
		return unauthorizedClient("the token was not issued to this client or to one it delegated from")
	}
	_, err = is.Revoke(ctx, Op{Kind: OpRevokeJTI, JTI: c.JTI, Tenant: c.Tenant, ExpiresAt: time.Unix(c.ExpiresAt, 0).Add(skew),
		Initiator: "user", Reason: "token revoked by its client",
		Subject: &OpSubject{Principal: Principal{Issuer: principalIssuer(c), Subject: c.Subject}, ClientID: c.ClientID, Tenant: c.Tenant}})
	return err
}

func principalIssuer(c *Claims) string {
	if c.SubjectIssuer != "" {
		return c.SubjectIssuer
	}
	return c.Issuer
}

// Introspect answers RFC 7662 for an access token: the claims of an active token, or inactive for anything
// malformed, foreign, expired or revoked.
func (is *Issuer) Introspect(ctx context.Context, token string) (map[string]any, error) {
	c, err := is.VerifyAccessToken(ctx, token)
	if err != nil {
		if errors.Is(err, ErrInvalidToken) {
			return map[string]any{"active": false}, nil
		}
		return nil, err
	}
	out := map[string]any{
		"active": true, "iss": c.Issuer, "sub": c.Subject, "aud": c.Audience, "client_id": c.ClientID,
		"iat": c.IssuedAt, "exp": c.ExpiresAt, "jti": c.JTI, "tenant": c.Tenant, "token_type": "Bearer",
	}
	set := func(k string, v any, ok bool) {
		if ok {
			out[k] = v
		}
	}
	set("scope", c.Scope, c.Scope != "")
	set("act", c.Act, c.Act != nil)
	set("may_act", c.MayAct, c.MayAct != nil)
	set("sid", c.SID, c.SID != "")
	set(DelegationClaim, c.Delegation, c.Delegation != nil)
	set("sub_iss", c.SubjectIssuer, c.SubjectIssuer != "")
	set("agent_class", c.AgentClass, c.AgentClass != "")
	set("acr", c.ACR, c.ACR != "")
	if c.Cnf != nil {
		out["cnf"], out["token_type"] = c.Cnf, "DPoP"
	}
	return out, nil
}

// errUnknownTarget is returned by RevokeTarget for a kind it does not know.
var errUnknownTarget = errors.New("issuer: unknown revocation target")

// Target names what an operator revokes: one token, one node (and its subtree), or everything of a user,
// client, agent, tenant, agent class or signing key issued up to now.
type Target struct {
	JTI    string
	SID    string
	Key    MarkKey
	Reason string
	// Disable also blocks new tokens for Key (kill switches).
	Disable bool
}

// RevokeTarget applies an operator's revocation: revoke_jti, revoke_node, or a watermark at now (plus a block
// when Disable is set). It returns the ops it recorded.
func (is *Issuer) RevokeTarget(ctx context.Context, t Target) ([]Op, error) {
	base := Op{Initiator: "admin", Reason: t.Reason}
	var ops []Op
	switch {
	case t.JTI != "":
		base.Kind, base.JTI = OpRevokeJTI, t.JTI
		ops = append(ops, base)
	case t.SID != "":
		base.Kind, base.SID = OpRevokeNode, t.SID
		ops = append(ops, base)
	case t.Key.Value != "":
		if t.Disable {
			d := base
			d.Kind, d.Key = OpDisable, t.Key
			ops = append(ops, d)
		}
		base.Kind, base.Key = OpWatermark, t.Key
		ops = append(ops, base)
	default:
		return nil, fmt.Errorf("%w: name a jti, a sid or a key", errUnknownTarget)
	}
	out := make([]Op, 0, len(ops))
	for _, op := range ops {
		done, err := is.Revoke(ctx, op)
		if err != nil {
			return out, err
		}
		out = append(out, done)
	}
	return out, nil
}
