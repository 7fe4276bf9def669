package issuer

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// Event is one CAEP event the issuer asks the transmitter to send: about Subject, with Payload; Txn ties it to
// the revocation op that caused it.
type Event struct {
	Subject schemas.Subject
	Payload schemas.Payload
	Txn     string
}

// EventSink takes the CAEP events of revocations (spec/agent-auth.md §4). internal/server wires it to the
// transmitter's intake, so every stream that asked for these events gets a SET. Send returns once the events
// are accepted durably; an error makes the issuer try again later.
type EventSink interface {
	Send(ctx context.Context, events []Event) error
}

// OpPublisher carries revocation ops to resource servers as they are (internal/server wires it to NATS
// ssf.revocation.<tenant>): their fastest path, ahead of the CAEP events. Publishing the same op twice must be
// harmless.
type OpPublisher interface {
	PublishOp(ctx context.Context, op Op) error
}

// SourceReceived marks ops the issuer applied because of a SET it received.
const SourceReceived = "received"

// outboxBatch is how many ops one outbox pass hands to the sink at most.
const outboxBatch = 256

// WakeOutbox makes RunOutbox look at the log now: clustered ssfd calls it when another replica recorded an op
// (the replica running the outbox learns of it on the revocation feed).
func (is *Issuer) WakeOutbox() { is.kickOutbox() }

// kickOutbox wakes RunOutbox after an op was recorded.
func (is *Issuer) kickOutbox() {
	select {
	case is.wake <- struct{}{}:
	default:
	}
}

// RunOutbox hands every recorded op to the EventSink as CAEP events, in log order, until ctx is done: at start
// (ops recorded before a crash are sent then), after each Revoke, and every retry interval while the sink fails.
// Delivery is at least once: an op whose events were accepted just before a crash is sent again.
func (is *Issuer) RunOutbox(ctx context.Context, retry time.Duration) {
	t := time.NewTicker(retry)
	defer t.Stop()
	for {
		for {
			n, err := is.FlushOutbox(ctx)
			if err != nil {
				if ctx.Err() == nil {
					is.log.Warn("revocation events not sent; will retry", "err", err)
				}
				break
			}
			if n < outboxBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-is.wake:
		case <-t.C:
		}
	}
}

// FlushOutbox sends one batch of ops that were not sent yet and returns how many it sent.
func (is *Issuer) FlushOutbox(ctx context.Context) (int, error) {
	is.outboxMu.Lock()
	defer is.outboxMu.Unlock()
	after, err := is.store.Emitted(ctx)
	if err != nil {
		return 0, err
	}
	ops, err := is.store.Ops(ctx, after, outboxBatch)
	if err != nil || len(ops) == 0 {
		return 0, err
	}
	if is.pub != nil {
		for _, op := range ops {
			if err := is.pub.PublishOp(ctx, op); err != nil {
				return 0, err
			}
		}
	}
	if is.sink != nil {
		var events []Event
		for _, op := range ops {
			events = append(events, is.eventsOf(ctx, op)...)
		}
		if len(events) > 0 {
			if err := is.sink.Send(ctx, events); err != nil {
				return 0, err
			}
		}
	}
	return len(ops), is.store.SetEmitted(ctx, ops[len(ops)-1].Seq)
}

// eventsOf maps one op to its CAEP events (spec/agent-auth.md §4.1, §4.2): a revoked token is named by jwt_id;
// each revoked node by a complex subject with its session, user, application and tenant; a watermark by the
// member of its key alone, since absent members are wildcards. Disable, enable and signing-key watermarks
// concern no external receiver and send nothing.
func (is *Issuer) eventsOf(ctx context.Context, op Op) []Event {
	if op.Source == SourceReceived {
		return nil
	}
	var subjects []schemas.Subject
	switch op.Kind {
	case OpRevokeJTI:
		if s, err := schemas.NewJWTID(is.url, op.JTI); err == nil {
			subjects = append(subjects, s)
		}
	case OpRevokeNode:
		sids := op.Nodes
		if len(sids) == 0 {
			sids = []string{op.SID}
		}
		for _, sid := range sids {
			n, err := is.store.Node(ctx, sid)
			if err != nil {
				n = &Node{ID: sid}
			}
			if s, ok := is.nodeSubject(n); ok {
				subjects = append(subjects, s)
			}
		}
	case OpWatermark:
		if s, ok := is.keySubject(op.Key); ok {
			subjects = append(subjects, s)
		}
	}
	reason := op.Reason
	if reason == "" {
		reason = "revoked by the ssfd token issuer (" + string(op.Kind) + ")"
	}
	initiator := schemas.InitiatingEntity(op.Initiator)
	switch initiator {
	case schemas.InitiatedByAdmin, schemas.InitiatedByUser, schemas.InitiatedByPolicy, schemas.InitiatedBySystem:
	default:
		initiator = schemas.InitiatedBySystem
	}
	out := make([]Event, 0, len(subjects))
	for _, s := range subjects {
		p := &schemas.SessionRevoked{CAEPCommon: schemas.CAEPCommon{EventTimestamp: schemas.NewNumericDate(op.At),
			InitiatingEntity: initiator, ReasonAdmin: schemas.LangMap{"en": reason}}}
		out = append(out, Event{Subject: s, Payload: p, Txn: op.ID})
	}
	return out
}

// nodeSubject is the complex subject of one node: session, plus user (for a human principal), application and
// tenant as context.
func (is *Issuer) nodeSubject(n *Node) (schemas.Subject, bool) {
	members := map[string]schemas.Subject{}
	if s, err := schemas.NewOpaque(n.ID); err == nil {
		members[schemas.RoleSession] = s
	}
	if n.Principal.Subject != "" && n.Principal.Issuer != is.url {
		if s, err := schemas.NewIssSub(n.Principal.Issuer, n.Principal.Subject); err == nil {
			members[schemas.RoleUser] = s
		}
	}
	if n.ClientID != "" {
		if s, ok := applicationSubject(n.ClientID); ok {
			members[schemas.RoleApplication] = s
		}
	}
	if n.Tenant != "" {
		if s, err := schemas.NewOpaque(n.Tenant); err == nil {
			members[schemas.RoleTenant] = s
		}
	}
	s, err := schemas.NewComplex(members)
	return s, err == nil
}

// keySubject is the kill-switch subject of a watermark key: one member of a complex subject.
func (is *Issuer) keySubject(k MarkKey) (schemas.Subject, bool) {
	var (
		role   string
		member schemas.Subject
		err    error
		ok     = true
	)
	switch k.Kind {
	case MarkSubject:
		iss, sub, found := strings.Cut(k.Value, "|")
		if !found {
			return schemas.Subject{}, false
		}
		role = schemas.RoleUser
		member, err = schemas.NewIssSub(iss, sub)
	case MarkClient, MarkActor:
		role = schemas.RoleApplication
		member, ok = applicationSubject(k.Value)
	case MarkTenant:
		role = schemas.RoleTenant
		member, err = schemas.NewOpaque(k.Value)
	case MarkClass:
		role = schemas.RoleGroup
		member, err = schemas.NewOpaque(k.Value)
	default:
		return schemas.Subject{}, false
	}
	if err != nil || !ok {
		return schemas.Subject{}, false
	}
	s, err := schemas.NewComplex(map[string]schemas.Subject{role: member})
	return s, err == nil
}

// applicationSubject names a client: uri for a SPIFFE or other URI client id, opaque otherwise.
func applicationSubject(id string) (schemas.Subject, bool) {
	if u, err := url.Parse(id); err == nil && u.IsAbs() && u.Host != "" {
		if s, err := schemas.NewURI(id); err == nil {
			return s, true
		}
	}
	s, err := schemas.NewOpaque(id)
	return s, err == nil
}
