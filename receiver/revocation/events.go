package revocation

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// ErrInvalidSET is returned by OpsFromSET for a SET whose revoking event cannot be interpreted: no subject, a
// payload that does not decode, no iss or jti to derive op ids from, or no time. A SET that ParseSET accepted
// never fails this way.
var ErrInvalidSET = errors.New("revocation: cannot interpret SET")

// SETOption changes how OpsFromSET maps SETs to ops.
type SETOption func(*setConfig)

type setConfig struct {
	tokenIssuers map[string]bool // nil: every issuer
	nodeIssuers  map[string]bool // nil: every issuer
}

// WithNodeIssuers names the transmitters whose session members name ssfd's own session nodes (ssfd's own
// transmitter, whose SETs carry the issuer's ops). A session-revoked from any other transmitter names a session
// of that identity provider, which no token's dlg.path holds: it is mapped by its principal instead (the user
// watermark), and its cutoff is the SET's iat rather than its event_timestamp, so that tokens minted between the
// event and its delivery are revoked too (over-revoking is the safe side). Without this option every
// transmitter is taken for ssfd's own.
func WithNodeIssuers(issuers ...string) SETOption {
	return func(c *setConfig) {
		c.nodeIssuers = make(map[string]bool, len(issuers))
		for _, iss := range issuers {
			c.nodeIssuers[iss] = true
		}
	}
}

// own reports whether the SET comes from a transmitter whose session members name ssfd's nodes.
func (c setConfig) own(set *schemas.SET) bool {
	return c.nodeIssuers == nil || c.nodeIssuers[set.Issuer]
}

// WithTokenIssuers names the token issuers whose tokens the index guards: a jwt_id subject becomes a revoke_jti
// op only when its iss is one of them (spec/agent-auth.md §4.2, simple jwt_id row). Without this option every
// jwt_id is taken, whatever its iss: the index keys tokens by jti alone, jtis are random, so another issuer's jti
// matching one of ours is not a realistic risk and over-revoking is the safe side.
func WithTokenIssuers(issuers ...string) SETOption {
	return func(c *setConfig) {
		c.tokenIssuers = make(map[string]bool, len(issuers))
		for _, iss := range issuers {
			c.tokenIssuers[iss] = true
		}
	}
}

// reach says how much of its subject an event revokes.
type reach int

const (
	// reachNone: the event revokes nothing.
	reachNone reach = iota
	// reachSession: the session member alone when it names one of our nodes; else as reachAccount.
	reachSession
	// reachAccount: the whole principal (user, else application, else group, else a tenant named alone); the
	// session member only when no principal can be mapped.
	reachAccount
)

// rule decides, from the decoded payload, how far an event reaches.
type rule func(schemas.Payload) reach

// on returns the rule that reaches r when the payload is a P for which cond (if any) holds.
func on[P schemas.Payload](r reach, cond func(P) bool) rule {
	return func(p schemas.Payload) reach {
		e, ok := p.(P)
		if !ok || cond != nil && !cond(e) {
			return reachNone
		}
		return r
	}
}

// eventRules is the event → action table of spec/agent-auth.md §4.2 as a receiver and resource server can act
// on it. Event types not listed — session-established, session-presented, RISC account-enabled (monotonic: it
// never resurrects tokens), account-credential-change-required, identifier-changed/recycled, opt-in/out,
// recovery-*, SSF verification and stream-updated, unknown types — revoke nothing. Claims overrides (v2) and
// acr-aware checks are not modelled, so token-claims-change and an assurance decrease revoke (v1 safe side).
var eventRules = map[schemas.EventType]rule{
	schemas.EventSessionRevoked:    on[*schemas.SessionRevoked](reachSession, nil),
	schemas.EventTokenClaimsChange: on[*schemas.TokenClaimsChange](reachAccount, nil),
	schemas.EventCredentialChange: on(reachAccount, func(e *schemas.CredentialChange) bool {
		return e.ChangeType != schemas.ChangeCreate // create is informational
	}),
	schemas.EventAssuranceLevelChange: on(reachAccount, func(e *schemas.AssuranceLevelChange) bool {
		return e.ChangeDirection == schemas.DirectionDecrease // increase, or no direction: informational
	}),
	schemas.EventDeviceComplianceChange: on(reachAccount, func(e *schemas.DeviceComplianceChange) bool {
		return e.CurrentStatus == schemas.NotCompliant // tokens carry no device: the user, or session, falls
	}),
	schemas.EventRiskLevelChange: on(reachAccount, func(e *schemas.RiskLevelChange) bool {
		return e.CurrentLevel == schemas.RiskHigh // MEDIUM and LOW are policy inputs, not revocations
	}),
	schemas.EventAccountDisabled:      on[*schemas.AccountDisabled](reachAccount, nil),
	schemas.EventAccountPurged:        on[*schemas.AccountPurged](reachAccount, nil),
	schemas.EventCredentialCompromise: on[*schemas.CredentialCompromise](reachAccount, nil),
	schemas.EventSessionsRevoked:      on[*schemas.SessionsRevoked](reachAccount, nil), // RISC 1.0 §2.11
}

// OpsFromSET normalises one verified SET into revocation ops (spec/agent-auth.md §3.3 step 2, §4.2). It returns
// (nil, nil) when the event revokes nothing or its subject cannot be matched to tokens, and an error wrapping
// ErrInvalidSET only for a SET it cannot interpret.
//
// Subjects (absent complex members are wildcards, present ones narrow; spec/ssf.md):
//   - session (opaque) → revoke_node(sid), for session-revoked only; the other members are context.
//   - user (iss_sub), or a simple iss_sub → watermark(sub, "iss|sub"), as Claims.Token builds it. A user in another
//     format (email, phone, opaque) cannot be matched to tokens and yields nothing.
//   - application (uri or opaque) → watermark(actor, value). ssfd's issuer sends both its client and its actor
//     kill switches as an application member, and an actor key matches the client_id as well as every act.sub,
//     so actor is the key that never revokes less than either.
//   - group (opaque) → watermark(class, id); tenant (opaque) → watermark(tenant, id), but only as the sole member.
//   - jwt_id → revoke_jti(jti), filtered by WithTokenIssuers; aliases → every identifier that maps.
//
// A complex subject is mapped by its principal, the first of user, application, group that is present (a tenant
// only when alone): every token the subject names carries that key, so one watermark already over-revokes, and
// watermarking the other members too would only revoke other principals' tokens. Device and other members are
// not in tokens and widen to the principal (the {user, device} row). A present principal that cannot be mapped
// yields nothing rather than widening to its context, except that a session member is then revoked.
//
// Op.ID is "<SET iss> <SET jti>#<n>", so a redelivered SET yields the same ids; At is the event_timestamp (else
// toe, else iat; never after iat), ExpiresAt At+DefaultRetention; Tenant is the tenant member's id.
func OpsFromSET(set *schemas.SET, opts ...SETOption) ([]Op, error) {
	if set == nil {
		return nil, fmt.Errorf("%w: no SET", ErrInvalidSET)
	}
	decide, ok := eventRules[set.Event.Type]
	if !ok {
		return nil, nil
	}
	payload, _, err := set.Event.Decode()
	if err != nil {
		return nil, fmt.Errorf("%w: %s payload: %w", ErrInvalidSET, set.Event.Type.Name(), err)
	}
	if set.Subject.IsZero() {
		return nil, fmt.Errorf("%w: %s without a subject", ErrInvalidSET, set.Event.Type.Name())
	}
	r := decide(payload)
	if r == reachNone {
		return nil, nil
	}
	var cfg setConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	if r == reachSession && !cfg.own(set) {
		r = reachAccount // another IdP's session is not one of our nodes
	}
	targets := dedupe(cfg.targets(set.Subject, r))
	if len(targets) == 0 {
		return nil, nil
	}
	return buildOps(set, targets, cfg.own(set))
}

// buildOps stamps the targets with ids, times, tenant and cause, and validates them.
func buildOps(set *schemas.SET, targets []Op, own bool) ([]Op, error) {
	if set.Issuer == "" || set.ID == "" {
		return nil, fmt.Errorf("%w: no iss or jti to derive op ids from", ErrInvalidSET)
	}
	at := eventTime(set)
	if !own {
		at = set.IssuedAt.Time() // when we learned of it: tokens minted since the event are revoked too
	}
	if at.IsZero() {
		return nil, fmt.Errorf("%w: no iat", ErrInvalidSET)
	}
	tenant := tenantOf(set.Subject)
	cause := Cause{Issuer: set.Issuer, SETJTI: set.ID, EventType: string(set.Event.Type), Txn: set.Txn}
	ops := make([]Op, len(targets))
	for i, op := range targets {
		op.ID = set.Issuer + " " + set.ID + "#" + strconv.Itoa(i)
		op.At, op.ExpiresAt = at, at.Add(DefaultRetention)
		op.Tenant = tenant
		if op.Key.Kind == KeyTenant {
			op.Tenant = op.Key.Value
		}
		c := cause
		op.Cause = &c
		if err := op.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidSET, err)
		}
		ops[i] = op
	}
	return ops, nil
}

// eventTime is when the event happened: event_timestamp (CAEP 1.0 §2; RISC credential-compromise), else toe,
// else iat. A time after iat cannot be the event's and is cut to iat, so that a wrong clock cannot raise a
// watermark into the future.
func eventTime(set *schemas.SET) time.Time {
	at := set.TimeOfEvent
	var members map[string]json.RawMessage
	if json.Unmarshal(set.Event.Payload, &members) == nil {
		var ts schemas.NumericDate
		if raw, ok := members["event_timestamp"]; ok && json.Unmarshal(raw, &ts) == nil && !ts.IsZero() {
			at = ts
		}
	}
	iat := set.IssuedAt.Time()
	if at.IsZero() || !iat.IsZero() && at.Time().After(iat) {
		return iat
	}
	return at.Time()
}

// targets maps a subject to ops that name only what they revoke (kind, jti, sid or key).
func (c setConfig) targets(s schemas.Subject, r reach) []Op {
	if s.Format() != schemas.FormatComplex {
		return c.simpleTargets(s)
	}
	if r == reachSession {
		if ops := memberTargets(s, schemas.RoleSession); len(ops) > 0 {
			return ops
		}
	}
	if ops := principalTargets(s); len(ops) > 0 {
		return ops
	}
	return memberTargets(s, schemas.RoleSession)
}

// simpleTargets maps a subject that is not complex: iss_sub, jwt_id, or aliases of them.
func (c setConfig) simpleTargets(s schemas.Subject) []Op {
	switch s.Format() {
	case schemas.FormatIssSub:
		return []Op{watermark(KeySubject, s.Get("iss")+"|"+s.Get("sub"))}
	case schemas.FormatJWTID:
		if c.tokenIssuers != nil && !c.tokenIssuers[s.Get("iss")] {
			return nil
		}
		return []Op{{Kind: OpRevokeJTI, JTI: s.Get("jti")}}
	case schemas.FormatAliases:
		var ops []Op
		for _, id := range s.Identifiers() {
			ops = append(ops, c.simpleTargets(id)...)
		}
		return ops
	}
	return nil // email, phone_number, opaque, uri, …: nothing in a token to match
}

// principalTargets maps the first principal member present: user, application, group, or a tenant named alone.
func principalTargets(s schemas.Subject) []Op {
	for _, role := range []string{schemas.RoleUser, schemas.RoleApplication, schemas.RoleGroup} {
		if _, ok := s.Member(role); ok {
			return memberTargets(s, role)
		}
	}
	if len(s.Members()) == 1 {
		return memberTargets(s, schemas.RoleTenant)
	}
	return nil
}

// memberTargets maps the member role of complex subject s (each identifier of an aliases member).
func memberTargets(s schemas.Subject, role string) []Op {
	m, ok := s.Member(role)
	if !ok {
		return nil
	}
	ids := []schemas.Subject{m}
	if m.Format() == schemas.FormatAliases {
		ids = m.Identifiers()
	}
	var ops []Op
	for _, id := range ids {
		if op, ok := memberTarget(role, id); ok {
			ops = append(ops, op)
		}
	}
	return ops
}

// memberTarget maps one identifier in the member role (spec/agent-auth.md §4.1).
func memberTarget(role string, id schemas.Subject) (Op, bool) {
	f := id.Format()
	switch {
	case role == schemas.RoleSession && f == schemas.FormatOpaque:
		return Op{Kind: OpRevokeNode, SID: id.Get("id")}, true
	case role == schemas.RoleUser && f == schemas.FormatIssSub:
		return watermark(KeySubject, id.Get("iss")+"|"+id.Get("sub")), true
	case role == schemas.RoleApplication && f == schemas.FormatURI:
		return watermark(KeyActor, id.Get("uri")), true
	case role == schemas.RoleApplication && f == schemas.FormatOpaque:
		return watermark(KeyActor, id.Get("id")), true
	case role == schemas.RoleGroup && f == schemas.FormatOpaque:
		return watermark(KeyClass, id.Get("id")), true
	case role == schemas.RoleTenant && f == schemas.FormatOpaque:
		return watermark(KeyTenant, id.Get("id")), true
	}
	return Op{}, false
}

func watermark(kind, value string) Op {
	return Op{Kind: OpWatermark, Key: Key{Kind: kind, Value: value}}
}

// tenantOf is the id of the subject's opaque tenant member, "" when it has none.
func tenantOf(s schemas.Subject) string {
	if ops := memberTargets(s, schemas.RoleTenant); len(ops) > 0 {
		return ops[0].Key.Value
	}
	return ""
}

// dedupe drops repeated targets (aliases may name one key twice), keeping the first of each.
func dedupe(ops []Op) []Op {
	seen := make(map[string]bool, len(ops))
	out := ops[:0]
	for _, op := range ops {
		k := strings.Join([]string{op.Kind, op.JTI, op.SID, op.Key.Kind, op.Key.Value}, "\x00")
		if !seen[k] {
			seen[k] = true
			out = append(out, op)
		}
	}
	return out
}
