package streams

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// Policy holds what the transmitter supplies to every stream configuration (SSF 1.0 §8.1.1): its issuer, the
// event types it supports, the delivery methods it offers, and the timing members.
type Policy struct {
	// Issuer is the transmitter's issuer, the iss of every stream and SET.
	Issuer string
	// EventsSupported lists the event types the transmitter can send.
	EventsSupported []schemas.EventType
	// DeliveryMethods lists the methods a stream may use; the first is not special, poll is the default.
	DeliveryMethods []schemas.DeliveryMethod
	// PollURL returns the poll endpoint of a stream (RFC 8936 §2.1): unique per stream.
	PollURL func(ID) string
	// CheckPushURL vets a receiver's push endpoint_url (scheme, SSRF); nil accepts any absolute URL.
	CheckPushURL func(string) error
	// MinVerificationInterval is the least time between two verification requests; 0 means none.
	MinVerificationInterval time.Duration
	// InactivityTimeout is how long a stream may see no receiver activity before the transmitter pauses it;
	// 0 means never.
	InactivityTimeout time.Duration
	// SigningAlgorithms lists the JWS algorithms a stream may ask for; the first is the default.
	SigningAlgorithms []string
}

// transmitterMembers are the members only the transmitter supplies; in PATCH and PUT they must equal the current
// values when present (spec/ssf.md UPD-04).
var transmitterMembers = []string{"iss", "aud", "events_supported", "events_delivered", "min_verification_interval",
	"inactivity_timeout"}

// SigningAlgorithmMember is the extension member in which a receiver asks for a signing algorithm other than the
// default, e.g. "ES256" for a high-rate internal consumer. Other transmitters ignore it (SSF 1.0 §4.2.3).
const SigningAlgorithmMember = "ssfd_signing_alg"

// request holds the receiver-supplied members of a create, update or replace body, each with whether it was
// present.
type request struct {
	members   map[string]json.RawMessage
	requested []schemas.EventType
	delivery  *schemas.Delivery
	desc      *string
	alg       *string
}

// parseRequest decodes a management body and the receiver-supplied members in it. A member that is null counts
// as absent for create and as "remove it" for update (RFC 7396 merge-patch semantics).
func parseRequest(body []byte) (*request, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		return nil, fmt.Errorf("%w: the body must be a JSON object", ErrInvalid)
	}
	r := &request{members: members}
	if raw, ok := members["events_requested"]; ok && string(raw) != "null" {
		var uris []string
		if err := json.Unmarshal(raw, &uris); err != nil {
			return nil, fmt.Errorf("%w: events_requested must be an array of event type URIs", ErrInvalid)
		}
		r.requested = []schemas.EventType{}
		for _, u := range uris {
			if t, err := schemas.ParseEventType(u); err == nil && !slices.Contains(r.requested, t) {
				r.requested = append(r.requested, t) // values that are not URIs are ignored (SSF 1.0 §8.1.1)
			}
		}
	}
	if raw, ok := members["delivery"]; ok && string(raw) != "null" {
		r.delivery = &schemas.Delivery{}
		if err := json.Unmarshal(raw, r.delivery); err != nil {
			return nil, fmt.Errorf("%w: delivery must be an object with a method", ErrInvalid)
		}
	}
	for name, dst := range map[string]**string{"description": &r.desc, SigningAlgorithmMember: &r.alg} {
		if raw, ok := members[name]; ok && string(raw) != "null" {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("%w: %s must be a string", ErrInvalid, name)
			}
			*dst = &s
		}
	}
	return r, nil
}

// NewStream builds a stream from a create request body (SSF 1.0 §8.1.1.1): receiver-supplied members from the
// body, everything else from the policy. A missing delivery means poll (spec/ssf.md CRT-03).
func (p *Policy) NewStream(owner string, aud schemas.Audience, body []byte, now time.Time) (*Stream, error) {
	r, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	if len(aud) == 0 {
		return nil, fmt.Errorf("%w: the stream needs an audience", ErrInvalid)
	}
	s := &Stream{Owner: owner, Status: schemas.StatusEnabled, CreatedAt: now, UpdatedAt: now, LastActivity: now}
	s.Config = schemas.StreamConfiguration{
		StreamID:                string(NewID()),
		Issuer:                  p.Issuer,
		Audience:                aud,
		EventsSupported:         slices.Clone(p.EventsSupported),
		MinVerificationInterval: int(p.MinVerificationInterval / time.Second),
		InactivityTimeout:       int(p.InactivityTimeout / time.Second),
	}
	if err := p.apply(s, r, true); err != nil {
		return nil, err
	}
	return s, nil
}

// Update applies a PATCH body (SSF 1.0 §8.1.1.3): members present are changed, members absent stay, null removes.
func (p *Policy) Update(s *Stream, body []byte, now time.Time) (*Stream, error) {
	return p.change(s, body, false, now)
}

// Replace applies a PUT body (SSF 1.0 §8.1.1.4): every receiver-supplied member left out is removed, and a missing
// delivery falls back to poll (spec/ssf.md RPL-02).
func (p *Policy) Replace(s *Stream, body []byte, now time.Time) (*Stream, error) {
	return p.change(s, body, true, now)
}

func (p *Policy) change(s *Stream, body []byte, replace bool, now time.Time) (*Stream, error) {
	r, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	if err := sameTransmitterMembers(s, r.members); err != nil {
		return nil, err
	}
	next := s.Clone()
	if !replace {
		// PATCH: an absent member keeps its value; rebuild the request from the stream for those.
		if _, ok := r.members["events_requested"]; !ok {
			r.requested = next.Config.EventsRequested
		}
		if _, ok := r.members["delivery"]; !ok {
			d := next.Config.Delivery
			r.delivery = &d
		}
		if _, ok := r.members["description"]; !ok {
			desc := next.Config.Description
			r.desc = &desc
		}
		if _, ok := r.members[SigningAlgorithmMember]; !ok {
			alg := next.SigningAlgorithm
			r.alg = &alg
		}
	}
	if err := p.apply(next, r, false); err != nil {
		return nil, err
	}
	next.UpdatedAt, next.LastActivity = now, now
	return next, nil
}

// apply sets the receiver-supplied members of s from r and recomputes events_delivered.
func (p *Policy) apply(s *Stream, r *request, create bool) error {
	s.Config.EventsRequested = r.requested
	s.Config.EventsDelivered = negotiate(p.EventsSupported, r.requested)
	s.Config.Description = ""
	if r.desc != nil {
		s.Config.Description = truncate(*r.desc, 1024)
	}
	s.SigningAlgorithm = p.SigningAlgorithms[0]
	if r.alg != nil && *r.alg != "" {
		if !slices.Contains(p.SigningAlgorithms, *r.alg) {
			return fmt.Errorf("%w: %s %q is not one of %v", ErrInvalid, SigningAlgorithmMember, *r.alg, p.SigningAlgorithms)
		}
		s.SigningAlgorithm = *r.alg
	}
	d := schemas.Delivery{Method: schemas.DeliveryPoll}
	if r.delivery != nil {
		d = *r.delivery
		d.Method = d.Method.Normalize()
	}
	return p.setDelivery(s, d)
}

func (p *Policy) setDelivery(s *Stream, d schemas.Delivery) error {
	if d.Method == "" {
		return fmt.Errorf("%w: delivery.method is required (SSF 1.0 §6.1)", ErrInvalid)
	}
	if !slices.Contains(p.DeliveryMethods, d.Method) {
		return fmt.Errorf("%w: delivery method %q is not supported; use one of %v", ErrInvalid, d.Method, p.DeliveryMethods)
	}
	switch d.Method {
	case schemas.DeliveryPoll:
		d = schemas.Delivery{Method: d.Method, EndpointURL: p.PollURL(s.ID())}
	case schemas.DeliveryPush:
		u, err := url.Parse(d.EndpointURL)
		if d.EndpointURL == "" || err != nil || !u.IsAbs() || u.Host == "" {
			return fmt.Errorf("%w: push delivery needs an absolute endpoint_url (SSF 1.0 §6.1.1)", ErrInvalid)
		}
		if p.CheckPushURL != nil {
			if err := p.CheckPushURL(d.EndpointURL); err != nil {
				return fmt.Errorf("%w: endpoint_url: %w", ErrInvalid, err)
			}
		}
	default:
		d = schemas.Delivery{Method: d.Method}
	}
	s.Config.Delivery = d
	return nil
}

// negotiate returns the event types both supported and requested, in the order requested (spec/ssf.md CRT-04):
// possibly empty, never nil, because events_delivered is required.
func negotiate(supported, requested []schemas.EventType) []schemas.EventType {
	out := []schemas.EventType{}
	for _, t := range requested {
		if slices.Contains(supported, t) {
			out = append(out, t)
		}
	}
	return out
}

// sameTransmitterMembers refuses a body whose transmitter-supplied members differ from the stream's
// (spec/ssf.md UPD-04, UPD-07).
func sameTransmitterMembers(s *Stream, members map[string]json.RawMessage) error {
	current, err := json.Marshal(s.Config)
	if err != nil {
		return err
	}
	var have map[string]json.RawMessage
	if err := json.Unmarshal(current, &have); err != nil {
		return err
	}
	for _, name := range transmitterMembers {
		raw, ok := members[name]
		if !ok {
			continue
		}
		if !sameJSON(raw, have[name], name) {
			return fmt.Errorf("%w: %s cannot be changed by the receiver (SSF 1.0 §8.1.1.3)", ErrInvalid, name)
		}
	}
	return nil
}

// sameJSON compares two JSON values; audiences compare as sets of strings, event lists as sets of URIs.
func sameJSON(a, b json.RawMessage, name string) bool {
	switch name {
	case "aud":
		var x, y schemas.Audience
		return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && sameSet(x, y)
	case "events_supported", "events_delivered":
		var x, y []string
		if b == nil {
			b = []byte("[]")
		}
		return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && sameSet(x, y)
	}
	var x, y any
	if b == nil {
		b = []byte("0")
	}
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && fmt.Sprint(x) == fmt.Sprint(y)
}

func sameSet[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s[:n])
	return string(r[:len(r)-1])
}
