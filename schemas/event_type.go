package schemas

import (
	"fmt"
	"net/url"
	"strings"
)

// EventType is the URI that names a security event type (RFC 8417 §2.2), such as
// https://schemas.openid.net/secevent/caep/event-type/session-revoked. Build one with ParseEventType.
type EventType string

// The namespaces of the event types defined by SSF 1.0, CAEP 1.0 and RISC 1.0.
const (
	CAEPNamespace = "https://schemas.openid.net/secevent/caep/event-type/"
	RISCNamespace = "https://schemas.openid.net/secevent/risc/event-type/"
	SSFNamespace  = "https://schemas.openid.net/secevent/ssf/event-type/"
)

// CAEP 1.0 §3 event types.
const (
	EventSessionRevoked         EventType = CAEPNamespace + "session-revoked"
	EventTokenClaimsChange      EventType = CAEPNamespace + "token-claims-change"
	EventCredentialChange       EventType = CAEPNamespace + "credential-change"
	EventAssuranceLevelChange   EventType = CAEPNamespace + "assurance-level-change"
	EventDeviceComplianceChange EventType = CAEPNamespace + "device-compliance-change"
	EventSessionEstablished     EventType = CAEPNamespace + "session-established"
	EventSessionPresented       EventType = CAEPNamespace + "session-presented"
	EventRiskLevelChange        EventType = CAEPNamespace + "risk-level-change"
)

// RISC 1.0 §2 event types.
const (
	EventAccountCredentialChangeRequired EventType = RISCNamespace + "account-credential-change-required"
	EventAccountPurged                   EventType = RISCNamespace + "account-purged"
	EventAccountDisabled                 EventType = RISCNamespace + "account-disabled"
	EventAccountEnabled                  EventType = RISCNamespace + "account-enabled"
	EventIdentifierChanged               EventType = RISCNamespace + "identifier-changed"
	EventIdentifierRecycled              EventType = RISCNamespace + "identifier-recycled"
	EventCredentialCompromise            EventType = RISCNamespace + "credential-compromise"
	EventOptIn                           EventType = RISCNamespace + "opt-in"
	EventOptOutInitiated                 EventType = RISCNamespace + "opt-out-initiated"
	EventOptOutCancelled                 EventType = RISCNamespace + "opt-out-cancelled"
	EventOptOutEffective                 EventType = RISCNamespace + "opt-out-effective"
	EventRecoveryActivated               EventType = RISCNamespace + "recovery-activated"
	EventRecoveryInformationChanged      EventType = RISCNamespace + "recovery-information-changed"
	// EventSessionsRevoked is deprecated by RISC 1.0 §2.11; new transmitters use EventSessionRevoked.
	EventSessionsRevoked EventType = RISCNamespace + "sessions-revoked"
)

// SSF 1.0 §8.1.4.1 and §8.1.5 event types.
const (
	EventVerification  EventType = SSFNamespace + "verification"
	EventStreamUpdated EventType = SSFNamespace + "stream-updated"
)

// legacyEventTypes maps event type URIs of earlier drafts to their SSF 1.0 names (spec/ssf.md §14.2).
var legacyEventTypes = map[string]EventType{
	"https://schemas.openid.net/secevent/sse/event-type/verification":          EventVerification,
	"https://schemas.openid.net/secevent/sse/event-type/stream-updated":        EventStreamUpdated,
	"https://schemas.openid.net/secevent/caep/event-type/token-claims-changed": EventTokenClaimsChange,
}

// ParseEventType checks that s is an absolute URI and returns it as an EventType. A legacy URI of an earlier
// draft (spec/ssf.md §14.2) is returned under its SSF 1.0 name, so legacy names are accepted but never emitted.
// Unknown event types are valid: receivers pass them through (SSF §4.2.3).
func ParseEventType(s string) (EventType, error) {
	if t, ok := legacyEventTypes[s]; ok {
		return t, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || strings.ContainsAny(s, " \t\r\n") {
		return "", fmt.Errorf("%w: event type %q is not an absolute URI (RFC 8417 §2.2)", ErrInvalid, s)
	}
	return EventType(s), nil
}

// Known reports whether t is defined by SSF 1.0, CAEP 1.0 or RISC 1.0.
func (t EventType) Known() bool {
	_, ok := eventSpecs[t]
	return ok
}

// Name is the last path segment of a known event type ("session-revoked"), used in NATS subjects; for an
// unknown type it is the URI with every character outside [A-Za-z0-9_-] replaced by "_".
func (t EventType) Name() string {
	if spec, ok := eventSpecs[t]; ok {
		return spec.name
	}
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, string(t))
}

// String returns the URI.
func (t EventType) String() string { return string(t) }

// KnownEventTypes lists every event type this package defines, in a stable order: CAEP, then RISC, then SSF.
func KnownEventTypes() []EventType {
	out := make([]EventType, len(eventOrder))
	copy(out, eventOrder)
	return out
}

// LookupEventType accepts the short name of a known event type ("session-revoked", as in NATS subjects and
// configuration files) or an event type URI (ParseEventType).
func LookupEventType(name string) (EventType, error) {
	for _, t := range KnownEventTypes() {
		if t.Name() == name {
			return t, nil
		}
	}
	if strings.Contains(name, ":") {
		return ParseEventType(name)
	}
	return "", fmt.Errorf("%w: %q is neither an event type URI nor the name of a known one such as session-revoked", ErrInvalid, name)
}
