package schemas

// StreamConfiguration is a stream configuration as a transmitter returns it (SSF 1.0 §8.1.1). Transmitter-supplied
// members are stream_id, iss, aud, events_supported, events_delivered, min_verification_interval and
// inactivity_timeout; receivers supply events_requested, delivery and description. The stream rules (what may be
// changed, how events are negotiated) live in package streams.
type StreamConfiguration struct {
	// StreamID identifies the stream; RFC 3986 unreserved characters only.
	StreamID string `json:"stream_id"`
	// Issuer is iss, equal to the metadata issuer and every SET's iss.
	Issuer string `json:"iss"`
	// Audience is aud; it cannot be changed.
	Audience Audience `json:"aud"`
	// EventsSupported lists the event types the transmitter can send on this stream.
	EventsSupported []EventType `json:"events_supported,omitempty"`
	// EventsRequested lists the event types the receiver asked for.
	EventsRequested []EventType `json:"events_requested,omitempty"`
	// EventsDelivered lists the event types the stream carries; always present, possibly empty.
	EventsDelivered []EventType `json:"events_delivered"`
	// Delivery says how SETs travel.
	Delivery Delivery `json:"delivery"`
	// MinVerificationInterval is the least number of seconds between two verification requests.
	MinVerificationInterval int `json:"min_verification_interval,omitempty"`
	// Description is text for humans.
	Description string `json:"description,omitempty"`
	// InactivityTimeout is the number of seconds without receiver activity after which the transmitter may pause,
	// disable or delete the stream (SSF 1.0 §8.1.1).
	InactivityTimeout int `json:"inactivity_timeout,omitempty"`
}

// StreamStatusResponse is the body of a status read or update (SSF 1.0 §8.1.2).
type StreamStatusResponse struct {
	StreamID string       `json:"stream_id"`
	Status   StreamStatus `json:"status"`
	Reason   string       `json:"reason,omitempty"`
}

// AddSubjectRequest is the body of an add-subject request (SSF 1.0 §8.1.3.2).
type AddSubjectRequest struct {
	StreamID string  `json:"stream_id"`
	Subject  Subject `json:"subject"`
	// Verified says whether the receiver verified the subject; absent means verified (spec/ssf.md SJ-01).
	Verified *bool `json:"verified,omitempty"`
}

// RemoveSubjectRequest is the body of a remove-subject request (SSF 1.0 §8.1.3.3).
type RemoveSubjectRequest struct {
	StreamID string  `json:"stream_id"`
	Subject  Subject `json:"subject"`
}

// VerificationRequest is the body of a verification request (SSF 1.0 §8.1.4.2).
type VerificationRequest struct {
	StreamID string `json:"stream_id"`
	// State is echoed unchanged in the verification event.
	State string `json:"state,omitempty"`
}
