package issuer

import (
	"cmp"
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
		op.At = keyWithdrawn // every token the key signed, whatever its iat (spec/agent-auth.md §3.2)
		op.ExpiresAt = keyWithdrawn
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
	// The decision counts once it is committed (spec/agent-auth.md §5): revocation latency is measured from here.
	// The stored op keeps no DecidedAt; the outbox publishes it again without one.
	done.DecidedAt = time.Now()
	if is.pub != nil {
		// The fast path to resource servers; should it fail, the outbox publishes the op again.
		if err := is.pub.PublishOp(ctx, done); err != nil {
			is.log.Warn("revocation op not published yet; the outbox will retry", "op_id", done.ID, "err", err)
		}
	}
	// The key's value can name a person (iss|sub): info says what kind of op it was, debug says whom.
	is.log.Info("revocation applied", "op_id", done.ID, "kind", done.Kind, "key_kind", done.Key.Kind, "nodes", len(done.Nodes))
	is.log.Debug("revocation applied", "op_id", done.ID, "key", done.Key.String(), "sid", done.SID)
	is.kickOutbox()
	return done, nil
}

// keyWithdrawn is the watermark time of a withdrawn signing key: the end of time.
var keyWithdrawn = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// RevokeToken revokes one access token of this issuer by its value (RFC 7009) when caller may: the token's
// client, or any client in its act chain. When the caller is the client of the token's delegated node, the node
// and its subtree go too: the agent gives up that delegation (spec/agent-auth.md §2.6). The token's expiry bounds
// the op. Unknown, expired or foreign tokens, and tokens the caller may not revoke, change nothing and are not an
// error (RFC 7009 §2.2; answering differently would tell a caller that a token it holds is valid).
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
		is.log.Info("revocation refused: not the token's client or a delegator", "client_id", caller.ID, "jti", c.JTI)
		return nil
	}
	_, err = is.Revoke(ctx, Op{ID: "jti:" + c.JTI, Kind: OpRevokeJTI, JTI: c.JTI, Tenant: c.Tenant,
		ExpiresAt: time.Unix(c.ExpiresAt, 0).Add(skew), Initiator: "user", Reason: "token revoked by its client",
		Subject: &OpSubject{Principal: Principal{Issuer: principalIssuer(c), Subject: c.Subject}, ClientID: c.ClientID, Tenant: c.Tenant}})
	if err != nil || caller == nil || c.SID == "" || caller.ID != c.ClientID {
		return err
	}
	n, err := is.store.Node(ctx, c.SID)
	if err != nil || n.Kind != NodeDelegated || n.ClientID != caller.ID {
		return nil //nolint:nilerr // no delegated node of the caller to give up
	}
	_, err = is.Revoke(ctx, Op{ID: "node:" + n.ID, Kind: OpRevokeNode, SID: n.ID, Initiator: "user",
		Reason: "delegation given up by its agent"})
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
		base.ID, base.Kind, base.JTI = "jti:"+t.JTI, OpRevokeJTI, t.JTI
		ops = append(ops, base)
	case t.SID != "":
		base.ID, base.Kind, base.SID = "node:"+t.SID, OpRevokeNode, t.SID
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
	for _, op := range ops {
		op.ID = cmp.Or(op.ID, "x") // validated with a placeholder id: nothing is written unless every op is valid
		op.At = cmp.Or(op.At, is.now())
		if err := op.Validate(); err != nil {
			return nil, invalidRequest("%s", err.Error())
		}
	}
	out := make([]Op, 0, len(ops))
	for _, op := range ops {
		done, err := is.Revoke(ctx, op)
		if err != nil {
			return out, err
		}
		out = append(out, done)
	}
	if t.Key.Kind == MarkSigningKey && t.Key.Value == is.signer.Active().ID() && is.rotate != nil {
		if err := is.rotate(); err != nil {
			return out, fmt.Errorf("issuer: rotate after withdrawing the active key: %w", err)
		}
		is.log.Warn("access-token signing key withdrawn and rotated", "kid", t.Key.Value)
	}
	return out, nil
}
