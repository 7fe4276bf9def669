package issuer

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// MarkKind is what a watermark or an issuance block is keyed by (spec/agent-auth.md §3.2).
type MarkKind string

// The watermark kinds.
const (
	// MarkSubject is a root principal, valued "iss|sub": every token of that human (or autonomous agent).
	MarkSubject MarkKind = "sub"
	// MarkClient is a client_id: every token issued to that client.
	MarkClient MarkKind = "client"
	// MarkActor is an agent ID: every token it holds or that was delegated through it (any act.sub).
	MarkActor MarkKind = "actor"
	// MarkTenant is a tenant.
	MarkTenant MarkKind = "tenant"
	// MarkClass is an agent class (blueprint).
	MarkClass MarkKind = "class"
	// MarkKey is a signing key id: every token it signed.
	MarkSigningKey MarkKind = "kid"
)

// MarkKinds lists every kind.
func MarkKinds() []MarkKind {
	return []MarkKind{MarkSubject, MarkClient, MarkActor, MarkTenant, MarkClass, MarkSigningKey}
}

// MarkKey is one watermark or block key.
type MarkKey struct {
	Kind  MarkKind `json:"kind"`
	Value string   `json:"value"`
}

// IsZero reports whether k is the zero key.
func (k MarkKey) IsZero() bool { return k.Kind == "" }

// String returns "kind:value".
func (k MarkKey) String() string { return string(k.Kind) + ":" + k.Value }

// OpKind names a revocation operation (spec/agent-auth.md §3.2).
type OpKind string

// The revocation operations: append-only, idempotent and monotonic (a revoked token or node never comes back;
// enable lifts an issuance block only).
const (
	OpRevokeJTI  OpKind = "revoke_jti"
	OpRevokeNode OpKind = "revoke_node"
	OpWatermark  OpKind = "watermark"
	OpDisable    OpKind = "disable"
	OpEnable     OpKind = "enable"
)

// Op is one revocation operation of the log. Ops are the issuer's source of truth for revocation, its outbox for
// CAEP events, and (later) what resource servers replay from NATS.
type Op struct {
	// ID identifies the op; a repeat with the same ID changes nothing.
	ID string `json:"op_id"`
	// Seq is the op's position in the log, set by the store.
	Seq uint64 `json:"seq,omitempty"`
	// Kind is the operation.
	Kind OpKind `json:"kind"`
	// JTI is the token of revoke_jti; SID the node of revoke_node.
	JTI string `json:"jti,omitempty"`
	SID string `json:"sid,omitempty"`
	// Key is the key of watermark, disable and enable.
	Key MarkKey `json:"key,omitzero"`
	// At is the decision time on the issuer's clock, whole seconds: a watermark rejects tokens with iat ≤ At. A
	// watermark on a signing key is set at the end of time instead: a withdrawn key is never trusted again.
	At time.Time `json:"at"`
	// DecidedAt is when the op was committed, to the nanosecond, as Revoke returns it and publishes it: where
	// revocation latency is measured from (spec/agent-auth.md §5). Not stored.
	DecidedAt time.Time `json:"decided_at,omitzero"`
	// ExpiresAt is when the op stops mattering: every token it can reject has expired by then.
	ExpiresAt time.Time `json:"expires_at"`
	// Tenant is the tenant the op belongs to.
	Tenant string `json:"tenant,omitempty"`
	// Reason is a human-readable reason; Initiator is admin, user, policy or system (CAEP initiating_entity).
	Reason    string `json:"reason,omitempty"`
	Initiator string `json:"initiator,omitempty"`
	// Subject describes whom the op is about, for the CAEP event: the principal, client and actor of a token or
	// node. Filled by the issuer when it knows them.
	Subject *OpSubject `json:"subject,omitempty"`
	// Source is "received" for an op the issuer applied on behalf of a SET another transmitter sent: it sends no
	// CAEP event for it, so that an event never travels back to where it came from.
	Source string `json:"source,omitempty"`
	// Nodes lists the nodes this op revoked, set by the store.
	Nodes []string `json:"nodes,omitempty"`
}

// OpSubject is the context of an op about one token or node: who it concerned.
type OpSubject struct {
	Principal Principal `json:"principal,omitzero"`
	ClientID  string    `json:"client_id,omitempty"`
	Tenant    string    `json:"tenant,omitempty"`
}

// maxValue bounds identifiers in ops, clients and sessions (the WIMSE identifier limit), maxReason a reason.
const (
	maxValue  = 2048
	maxReason = 1024
)

// Validate checks an op before it is applied: a known kind with its target, and values of bounded length.
func (op Op) Validate() error {
	if op.ID == "" {
		return fmt.Errorf("issuer: op without id")
	}
	if len(op.ID) > maxValue+64 {
		return fmt.Errorf("issuer: op ids are at most %d bytes", maxValue+64)
	}
	for _, v := range []string{op.JTI, op.SID, op.Key.Value, op.Tenant} {
		if len(v) > maxValue {
			return fmt.Errorf("issuer: op values are at most %d bytes", maxValue)
		}
	}
	if len(op.Reason) > maxReason {
		return fmt.Errorf("issuer: a reason is at most %d bytes", maxReason)
	}
	if op.At.IsZero() {
		return fmt.Errorf("issuer: op %s without time", op.ID)
	}
	switch op.Kind {
	case OpRevokeJTI:
		if op.JTI == "" {
			return fmt.Errorf("issuer: %s needs a jti", op.Kind)
		}
	case OpRevokeNode:
		if op.SID == "" {
			return fmt.Errorf("issuer: %s needs a sid", op.Kind)
		}
	case OpWatermark, OpDisable, OpEnable:
		if op.Key.Value == "" || !validMarkKind(op.Key.Kind) {
			return fmt.Errorf("issuer: %s needs a key of a known kind and a value", op.Kind)
		}
	default:
		return fmt.Errorf("issuer: unknown op kind %q", op.Kind)
	}
	return nil
}

func validMarkKind(k MarkKind) bool {
	for _, m := range MarkKinds() {
		if m == k {
			return true
		}
	}
	return false
}

// checkText validates a name an operator or a token gives (tenant, class, subject, issuer, reason): not empty, at
// most max bytes, valid UTF-8 without control characters, so it can be a storage key and a log value.
func checkText(v string, max int) error {
	switch {
	case v == "":
		return fmt.Errorf("is required")
	case len(v) > max:
		return fmt.Errorf("is longer than %d bytes", max)
	case !utf8.ValidString(v):
		return fmt.Errorf("is not valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("holds a control character")
		}
	}
	return nil
}
