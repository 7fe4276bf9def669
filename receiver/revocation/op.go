package revocation

import (
	"errors"
	"fmt"
	"time"
)

// The operation kinds (spec/agent-auth.md §3.2). They are monotonic: a revoked token or node never comes back,
// and a watermark only moves forward; enable lifts an issuance block at the issuer and changes nothing here.
const (
	OpRevokeJTI  = "revoke_jti"
	OpRevokeNode = "revoke_node"
	OpWatermark  = "watermark"
	OpDisable    = "disable"
	OpEnable     = "enable"
	// OpHeartbeat revokes nothing: ssfd publishes one on the feed every few seconds, so that a resource server
	// can tell a quiet feed from a broken one (spec/agent-auth.md §3.5).
	OpHeartbeat = "heartbeat"
)

// The watermark key kinds: what an issued-before cutoff is keyed by.
const (
	KeySubject    = "sub"    // "iss|sub" of the root principal
	KeyClient     = "client" // client_id
	KeyActor      = "actor"  // an agent anywhere in the act chain, or the client
	KeyTenant     = "tenant"
	KeyClass      = "class" // agent class (blueprint)
	KeySigningKey = "kid"
)

// Op is one revocation operation as it travels on NATS ssf.revocation.<tenant> (JSON; the issuer's ops carry more
// members, which are ignored here). Ops are idempotent by ID.
type Op struct {
	ID        string    `json:"op_id"`
	Kind      string    `json:"kind"`
	JTI       string    `json:"jti,omitempty"`
	SID       string    `json:"sid,omitempty"`
	Key       Key       `json:"key,omitzero"`
	At        time.Time `json:"at"`
	ExpiresAt time.Time `json:"expires_at"`
	// DecidedAt is when the op was decided, to the nanosecond (for ops of ssfd's issuer): revocation latency is
	// measured from it (spec/agent-auth.md §5).
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Tenant    string    `json:"tenant,omitempty"`
	// Cause says where a normalised op came from: the SET that carried it.
	Cause *Cause `json:"cause,omitempty"`
}

// Key is a watermark key.
type Key struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// Cause names the SET an op was derived from (spec/agent-auth.md §3.3).
type Cause struct {
	Issuer    string `json:"iss,omitempty"`
	SETJTI    string `json:"set_jti,omitempty"`
	EventType string `json:"event_type,omitempty"`
	Txn       string `json:"txn,omitempty"`
}

// ErrInvalidOp is returned for an op that cannot be applied.
var ErrInvalidOp = errors.New("revocation: invalid op")

// Revokes reports whether applying op can refuse a token here (revoke_jti, revoke_node, watermark); disable and
// enable act at the issuer, and heartbeats only say the feed is alive.
func (op Op) Revokes() bool {
	switch op.Kind {
	case OpRevokeJTI, OpRevokeNode, OpWatermark:
		return true
	}
	return false
}

// Validate checks that op names what its kind needs.
func (op Op) Validate() error {
	switch {
	case op.ID == "":
		return fmt.Errorf("%w: no op_id", ErrInvalidOp)
	case op.At.IsZero():
		return fmt.Errorf("%w: %s has no time", ErrInvalidOp, op.ID)
	}
	switch op.Kind {
	case OpRevokeJTI:
		if op.JTI == "" {
			return fmt.Errorf("%w: %s needs a jti", ErrInvalidOp, op.Kind)
		}
	case OpRevokeNode:
		if op.SID == "" {
			return fmt.Errorf("%w: %s needs a sid", ErrInvalidOp, op.Kind)
		}
	case OpWatermark:
		switch op.Key.Kind {
		case KeySubject, KeyClient, KeyActor, KeyTenant, KeyClass, KeySigningKey:
		default:
			return fmt.Errorf("%w: watermark key kind %q", ErrInvalidOp, op.Key.Kind)
		}
		if op.Key.Value == "" {
			return fmt.Errorf("%w: watermark without a value", ErrInvalidOp)
		}
	case OpDisable, OpEnable, OpHeartbeat:
	default:
		return fmt.Errorf("%w: kind %q", ErrInvalidOp, op.Kind)
	}
	return nil
}
