package schemas

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strings"
)

// Payload is the typed content of one event of a SET, the object under events[<event type>] (RFC 8417 §2.2).
// Every event type of SSF 1.0, CAEP 1.0 and RISC 1.0 has a Payload type in this package.
type Payload interface {
	// EventType is the URI the payload is filed under in the events claim.
	EventType() EventType
	// Validate checks the members against the event type's definition and reports every problem.
	Validate() error
}

// Event is the one event of a SET: its type and its payload as raw JSON, kept byte for byte so that unknown event
// types and members this package does not model survive a round trip (SSF §4.2.3).
type Event struct {
	Type    EventType
	Payload json.RawMessage
}

// NewEvent validates p and encodes it as the event of a SET.
func NewEvent(p Payload) (Event, error) {
	if err := p.Validate(); err != nil {
		return Event{}, err
	}
	raw, err := marshal(p)
	if err != nil {
		return Event{}, fmt.Errorf("schemas: encode %s: %w", p.EventType(), err)
	}
	return Event{Type: p.EventType(), Payload: raw}, nil
}

// Decode returns the typed payload of a known event type, validated; ok is false for an unknown event type,
// which is not an error (receivers ignore what they do not understand).
func (e Event) Decode() (p Payload, ok bool, err error) {
	spec, known := eventSpecs[e.Type]
	if !known {
		return nil, false, nil
	}
	p, err = spec.decode(e.Payload)
	return p, true, err
}

// DecodePayload decodes and validates the payload of an event of type t; an unknown type is an error here.
func DecodePayload(t EventType, payload []byte) (Payload, error) {
	spec, ok := eventSpecs[t]
	if !ok {
		return nil, fmt.Errorf("%w: unknown event type %s", ErrInvalid, t)
	}
	return spec.decode(payload)
}

// eventSpec describes one known event type: its short name, how to build its payload, and the JSON names of
// the payload's members.
type eventSpec struct {
	name   string
	new    func() Payload
	fields map[string]reflect.Type
}

// decode parses payload into a fresh typed value and validates it, reporting type mismatches by path.
//
// encoding/json matches member names case-insensitively and lets null stand for any optional member; SSF names
// are exact and an absent member is not a null one. So members are checked by exact name first: a null for a
// defined member is a problem, and a member that only differs in case is ignored as unknown (SSF 1.0 §4.2.3).
func (s eventSpec) decode(payload []byte) (Payload, error) {
	var c checker
	m, ok := decodeObject(&c, "", payload)
	if !ok {
		return nil, c.err()
	}
	return s.decodeMembers(m, payload)
}

// decodeMembers is decode of a payload whose members m were split already; m is not changed.
func (s eventSpec) decodeMembers(m map[string]json.RawMessage, payload []byte) (Payload, error) {
	var c checker
	filtered := false
	for name, raw := range m {
		ft, defined := s.fields[name]
		switch {
		case defined && jsonKind(raw) == "null":
			c.add(pointer("", name), "must not be null; leave it out instead")
		case defined && isEnum(ft) && string(raw) == `""`:
			c.add(pointer("", name), "must not be empty; leave it out instead")
		case !defined && s.foldsToField(name):
			if !filtered {
				m, filtered = maps.Clone(m), true
			}
			delete(m, name)
			payload = nil // decode from the filtered members
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	if payload == nil {
		payload, _ = marshal(m) // members of a decoded object always encode
	}
	p := s.new()
	if !decodeInto(&c, "", payload, p) {
		return nil, c.err()
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// spec registers a payload type under its name; the generic parameter keeps each entry typed.
func spec[P any, PP interface {
	*P
	Payload
}](name string) eventSpec {
	return eventSpec{name: name, new: func() Payload { return PP(new(P)) }, fields: jsonFields(reflect.TypeFor[P]())}
}

// foldsToField reports whether name equals a defined member name apart from case.
func (s eventSpec) foldsToField(name string) bool {
	for f := range s.fields {
		if strings.EqualFold(f, name) {
			return true
		}
	}
	return false
}

// jsonFields maps the JSON member names of a struct type, including those of embedded structs, to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			for name, ft := range jsonFields(f.Type) {
				out[name] = ft
			}
			continue
		}
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			out[name] = f.Type
		}
	}
	return out
}

// isEnum reports whether t is one of this package's enumerated string types (InitiatingEntity, RiskLevel, ...),
// for which an empty string is never a value.
func isEnum(t reflect.Type) bool {
	return t.Kind() == reflect.String && t.Name() != "string" && t.PkgPath() == reflect.TypeFor[EventType]().PkgPath()
}

// eventOrder is every known event type in a stable order.
var eventOrder = []EventType{
	EventSessionRevoked, EventTokenClaimsChange, EventCredentialChange, EventAssuranceLevelChange,
	EventDeviceComplianceChange, EventSessionEstablished, EventSessionPresented, EventRiskLevelChange,
	EventAccountCredentialChangeRequired, EventAccountPurged, EventAccountDisabled, EventAccountEnabled,
	EventIdentifierChanged, EventIdentifierRecycled, EventCredentialCompromise, EventOptIn, EventOptOutInitiated,
	EventOptOutCancelled, EventOptOutEffective, EventRecoveryActivated, EventRecoveryInformationChanged,
	EventSessionsRevoked, EventVerification, EventStreamUpdated,
}

// eventSpecs is the registry of known event types.
var eventSpecs = map[EventType]eventSpec{
	EventSessionRevoked:                  spec[SessionRevoked]("session-revoked"),
	EventTokenClaimsChange:               spec[TokenClaimsChange]("token-claims-change"),
	EventCredentialChange:                spec[CredentialChange]("credential-change"),
	EventAssuranceLevelChange:            spec[AssuranceLevelChange]("assurance-level-change"),
	EventDeviceComplianceChange:          spec[DeviceComplianceChange]("device-compliance-change"),
	EventSessionEstablished:              spec[SessionEstablished]("session-established"),
	EventSessionPresented:                spec[SessionPresented]("session-presented"),
	EventRiskLevelChange:                 spec[RiskLevelChange]("risk-level-change"),
	EventAccountCredentialChangeRequired: spec[AccountCredentialChangeRequired]("account-credential-change-required"),
	EventAccountPurged:                   spec[AccountPurged]("account-purged"),
	EventAccountDisabled:                 spec[AccountDisabled]("account-disabled"),
	EventAccountEnabled:                  spec[AccountEnabled]("account-enabled"),
	EventIdentifierChanged:               spec[IdentifierChanged]("identifier-changed"),
	EventIdentifierRecycled:              spec[IdentifierRecycled]("identifier-recycled"),
	EventCredentialCompromise:            spec[CredentialCompromise]("credential-compromise"),
	EventOptIn:                           spec[OptIn]("opt-in"),
	EventOptOutInitiated:                 spec[OptOutInitiated]("opt-out-initiated"),
	EventOptOutCancelled:                 spec[OptOutCancelled]("opt-out-cancelled"),
	EventOptOutEffective:                 spec[OptOutEffective]("opt-out-effective"),
	EventRecoveryActivated:               spec[RecoveryActivated]("recovery-activated"),
	EventRecoveryInformationChanged:      spec[RecoveryInformationChanged]("recovery-information-changed"),
	EventSessionsRevoked:                 spec[SessionsRevoked]("sessions-revoked"),
	EventVerification:                    spec[Verification]("verification"),
	EventStreamUpdated:                   spec[StreamUpdated]("stream-updated"),
}

// SchemaFile is the file name, under jsonschema/events/, of the JSON Schema of a known event type, such as
// "caep-session-revoked.json"; "" for an unknown type.
func SchemaFile(t EventType) string {
	spec, ok := eventSpecs[t]
	if !ok {
		return ""
	}
	ns := "ssf"
	switch {
	case strings.HasPrefix(string(t), CAEPNamespace):
		ns = "caep"
	case strings.HasPrefix(string(t), RISCNamespace):
		ns = "risc"
	}
	return ns + "-" + spec.name + ".json"
}
