package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// SET holds the claims of a Security Event Token as SSF 1.0 §4 profiles RFC 8417: issuer, id, issue time,
// audience, optional transaction id and time of event, the subject (sub_id), exactly one event, and any other
// claims, kept byte for byte. A SET never carries sub or exp (SSF 1.0 §4.1.2, §4.1.7).
type SET struct {
	// Issuer is iss: the transmitter's issuer, equal to the stream's iss and the metadata issuer.
	Issuer string
	// ID is jti, unique within the transmitter's event feed.
	ID string
	// IssuedAt is iat.
	IssuedAt NumericDate
	// Audience is aud, a string or an array on the wire.
	Audience Audience
	// Txn is txn, the id of the cause shared by every SET it produced; always a string on the wire.
	Txn string
	// TimeOfEvent is toe, optional; CAEP events carry event_timestamp instead.
	TimeOfEvent NumericDate
	// Subject is sub_id, the primary subject (SSF 1.0 §3.1).
	Subject Subject
	// Event is the one event, with its payload as raw JSON.
	Event Event
	// Extra holds every other claim, so that what a receiver does not understand survives (SSF 1.0 §4.2.3).
	Extra map[string]json.RawMessage
}

// claimOrder is the order in which MarshalJSON writes the known claims.
var claimOrder = []string{"iss", "jti", "iat", "aud", "txn", "toe", "sub_id", "events"}

// forbiddenClaims may never appear in a SET (SSF 1.0 §4.1.2, §4.1.7; spec/ssf.md SET-06).
var forbiddenClaims = []string{"sub", "exp"}

// ParseSET decodes and validates the claims of a SET (the JWS payload), reporting every problem with its JSON
// Pointer: required claims (iss, iat, jti, aud, sub_id, events), no sub or exp, exactly one event, a valid
// subject, and a valid payload for a known event type. Unknown event types are accepted as they are. Several
// events keys are accepted only when they are alternative URIs of one event type (SSF 1.0 §4.2.1).
func ParseSET(claims []byte, opts ...ParseOption) (*SET, error) {
	o := collect(opts)
	var c checker
	m, ok := decodeObject(&c, "", claims)
	if !ok {
		return nil, c.err()
	}
	set := &SET{}
	set.Issuer = requiredString(&c, m, "iss")
	set.ID = requiredString(&c, m, "jti")
	if raw, ok := m["iat"]; !ok {
		c.add("/iat", "is required (RFC 8417 §2.2)")
	} else {
		decodeInto(&c, "/iat", raw, &set.IssuedAt)
	}
	if raw, ok := m["aud"]; !ok {
		c.add("/aud", "is required (SSF 1.0 §4.1.8)")
	} else if decodeInto(&c, "/aud", raw, &set.Audience) {
		set.Audience.check(&c, "/aud")
	}
	if raw, ok := m["txn"]; ok {
		set.Txn = parseTxn(&c, raw)
	}
	if raw, ok := m["toe"]; ok {
		decodeInto(&c, "/toe", raw, &set.TimeOfEvent)
	}
	for _, name := range forbiddenClaims {
		if _, ok := m[name]; ok {
			c.add("/"+name, "must not be present in a SET (SSF 1.0 §4.1.2, §4.1.7)")
		}
	}
	var legacySubject json.RawMessage
	set.Event, legacySubject = parseEvents(&c, m["events"], o)
	switch raw, ok := m["sub_id"]; {
	case ok:
		set.Subject = parseSubject(&c, "/sub_id", raw, o, true)
	case o.legacy && legacySubject != nil:
		set.Subject = parseSubject(&c, pointer(pointer("/events", string(set.Event.Type)), "subject"), legacySubject, o, true)
	default:
		c.add("/sub_id", "is required (SSF 1.0 §3.1)")
	}
	for _, name := range append(claimOrder, forbiddenClaims...) {
		delete(m, name)
	}
	if len(m) > 0 {
		set.Extra = m
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return set, nil
}

func requiredString(c *checker, m map[string]json.RawMessage, name string) string {
	raw, ok := m[name]
	if !ok {
		c.add("/"+name, "is required (RFC 8417 §2.2)")
		return ""
	}
	var s string
	if !decodeInto(c, "/"+name, raw, &s) {
		return ""
	}
	switch {
	case s == "":
		c.add("/"+name, "must not be empty")
	case len(s) > MaxIdentifierLength:
		c.add("/"+name, "is longer than %d bytes", MaxIdentifierLength)
	}
	return s
}

// MaxIdentifierLength bounds a SET's iss and jti. RFC 8417 sets no limit, but a receiver keys its replay window
// on them, so one absurd value must be refused rather than stored (storage keys are bounded).
const MaxIdentifierLength = 2048

// parseTxn accepts a string, and a JSON number from peers on older drafts as its decimal text (spec/ssf.md SET-14).
func parseTxn(c *checker, raw json.RawMessage) string {
	var s string
	if jsonKind(raw) == "string" && json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if jsonKind(raw) == "number" && json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	c.add("/txn", "must be a string, not %s (SSF 1.0 §4.1.9)", jsonKind(raw))
	return ""
}

// parseEvents checks the events claim: an object with exactly one event type (or alternative URIs of one type),
// whose payload is an object valid for its type. It returns the event and, for legacy peers, a subject member
// found inside the payload.
func parseEvents(c *checker, raw json.RawMessage, o parseOptions) (Event, json.RawMessage) {
	if raw == nil {
		c.add("/events", "is required (RFC 8417 §2.2)")
		return Event{}, nil
	}
	m, ok := decodeObject(c, "/events", raw)
	if !ok {
		return Event{}, nil
	}
	if len(m) == 0 {
		c.add("/events", "must hold exactly one event (SSF 1.0 §4.2.1), found none")
		return Event{}, nil
	}
	uris := make([]string, 0, len(m))
	for uri := range m {
		uris = append(uris, uri)
	}
	sort.Strings(uris)
	var ev Event
	for _, uri := range uris {
		t, err := ParseEventType(uri)
		if err != nil {
			c.add(pointer("/events", uri), "is not an event type URI (RFC 8417 §2.2)")
			return Event{}, nil
		}
		if ev.Type != "" && t != ev.Type {
			c.add("/events", "must hold exactly one event (SSF 1.0 §4.2.1), found %d", len(m))
			return Event{}, nil
		}
		if ev.Type == "" || string(t) == uri { // prefer the SSF 1.0 URI's payload among aliases
			ev = Event{Type: t, Payload: m[uri]}
		}
	}
	path := pointer("/events", string(ev.Type))
	pm, ok := decodeObject(c, path, ev.Payload)
	if !ok {
		return Event{}, nil
	}
	if spec, known := eventSpecs[ev.Type]; known {
		if _, err := spec.decodeMembers(pm, ev.Payload); err != nil {
			c.merge(path, err)
		}
	}
	if o.legacy {
		return ev, pm["subject"]
	}
	return ev, nil
}

// MarshalJSON writes the claims in a fixed order (iss, jti, iat, aud, txn, toe, sub_id, events), then the other
// claims sorted by name. It refuses a SET that would break SSF 1.0 §4: sub or exp among the other claims, or a
// missing event. It is on the transmitter's hot path (one call per SET), so it appends bytes directly.
func (s *SET) MarshalJSON() ([]byte, error) {
	if s.Event.Type == "" || len(s.Event.Payload) == 0 {
		return nil, fmt.Errorf("%w: a SET needs exactly one event (SSF 1.0 §4.2.1)", ErrInvalid)
	}
	if !json.Valid(s.Event.Payload) || jsonKind(s.Event.Payload) != "object" {
		return nil, fmt.Errorf("%w: the payload of %s is not a JSON object", ErrInvalid, s.Event.Type)
	}
	b := make([]byte, 0, 256+len(s.Event.Payload)+len(s.Subject.canon))
	b = append(b, `{"iss":`...)
	b = appendString(b, s.Issuer)
	b = append(b, `,"jti":`...)
	b = appendString(b, s.ID)
	b = append(b, `,"iat":`...)
	iat, _ := s.IssuedAt.MarshalJSON()
	b = append(b, iat...)
	if len(s.Audience) > 0 {
		b = append(b, `,"aud":`...)
		b = appendAudience(b, s.Audience)
	}
	if s.Txn != "" {
		b = append(b, `,"txn":`...)
		b = appendString(b, s.Txn)
	}
	if !s.TimeOfEvent.IsZero() {
		toe, _ := s.TimeOfEvent.MarshalJSON()
		b = append(append(b, `,"toe":`...), toe...)
	}
	if !s.Subject.IsZero() {
		b = append(append(b, `,"sub_id":`...), s.Subject.canon...)
	}
	// The payload is written as it is, so that it survives byte for byte.
	b = append(b, `,"events":{`...)
	b = appendString(b, string(s.Event.Type))
	b = append(append(append(b, ':'), s.Event.Payload...), '}')
	names := make([]string, 0, len(s.Extra))
	for name := range s.Extra {
		for _, reserved := range append(claimOrder, forbiddenClaims...) {
			if name == reserved {
				return nil, fmt.Errorf("%w: claim %q cannot be set through Extra", ErrInvalid, name)
			}
		}
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		var buf bytes.Buffer
		if err := json.Compact(&buf, s.Extra[name]); err != nil {
			return nil, fmt.Errorf("%w: claim %q is not valid JSON", ErrInvalid, name)
		}
		b = append(appendString(append(b, ','), name), ':')
		b = append(b, buf.Bytes()...)
	}
	return append(b, '}'), nil
}

func appendAudience(b []byte, a Audience) []byte {
	if len(a) == 1 {
		return appendString(b, a[0])
	}
	b = append(b, '[')
	for i, v := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, v)
	}
	return append(b, ']')
}

func itoa(i int) string { return strconv.Itoa(i) }
