package schemas

import (
	"encoding/json"
	"fmt"
)

// PollRequest is the body a receiver POSTs to a poll endpoint (RFC 8936 §2.4). Absent members take their
// defaults: no limit on SETs, a long poll, nothing acknowledged.
type PollRequest struct {
	// MaxEvents caps the SETs returned; nil means no limit and 0 means an acknowledge-only request.
	MaxEvents *int `json:"maxEvents,omitempty"`
	// ReturnImmediately asks for a short poll; the default (false) is a long poll.
	ReturnImmediately bool `json:"returnImmediately,omitempty"`
	// Ack lists the jti of SETs received and accepted.
	Ack []string `json:"ack,omitempty"`
	// SetErrs maps the jti of SETs that failed validation to the error.
	SetErrs map[string]SETError `json:"setErrs,omitempty"`
}

// ParsePollRequest decodes and checks a poll request, reporting every problem with its JSON Pointer.
func ParsePollRequest(data []byte) (*PollRequest, error) {
	var c checker
	if _, ok := decodeObject(&c, "", data); !ok {
		return nil, c.err()
	}
	var r PollRequest
	if !decodeInto(&c, "", data, &r) {
		return nil, c.err()
	}
	if r.MaxEvents != nil && *r.MaxEvents < 0 {
		c.add("/maxEvents", "must not be negative (RFC 8936 §2.4)")
	}
	for i, jti := range r.Ack {
		if jti == "" {
			c.add(fmt.Sprintf("/ack/%d", i), "must not be empty")
		}
	}
	for jti, e := range r.SetErrs {
		if e.Err == "" {
			c.add(pointer(pointer("/setErrs", jti), "err"), "is required (RFC 8936 §2.4)")
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return &r, nil
}

// PollResponse is a poll endpoint's answer (RFC 8936 §2.5): the SETs by jti, and whether more are waiting.
type PollResponse struct {
	// Sets maps each jti to its SET in compact serialization; empty (never absent) when there is nothing.
	Sets map[string]string `json:"sets"`
	// MoreAvailable is true when more unacknowledged SETs are waiting.
	MoreAvailable bool `json:"moreAvailable,omitempty"`
}

// ParsePollResponse decodes a poll response, refusing one without a sets object or with an empty SET or jti.
func ParsePollResponse(data []byte) (*PollResponse, error) {
	var c checker
	m, ok := decodeObject(&c, "", data)
	if !ok {
		return nil, c.err()
	}
	if _, ok := m["sets"]; !ok {
		c.add("/sets", "is required (RFC 8936 §2.5)")
		return nil, c.err()
	}
	var r PollResponse
	if !decodeInto(&c, "", data, &r) {
		return nil, c.err()
	}
	if r.Sets == nil {
		c.add("/sets", "must be an object (RFC 8936 §2.5)")
	}
	for jti, set := range r.Sets {
		if jti == "" || set == "" {
			c.add(pointer("/sets", jti), "must map a jti to a SET")
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return &r, nil
}

// MarshalJSON always writes sets, as {} when there is nothing to deliver (RFC 8936 §2.5).
func (r PollResponse) MarshalJSON() ([]byte, error) {
	type plain PollResponse
	if r.Sets == nil {
		r.Sets = map[string]string{}
	}
	return json.Marshal(plain(r))
}
