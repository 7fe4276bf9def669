package streams

import (
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// Stream is a stream as the transmitter keeps it: the configuration it returns to the receiver (SSF 1.0 §8.1.1),
// the client that owns it, its status (SSF 1.0 §8.1.2) and the times the status machine needs.
type Stream struct {
	// Config is the stream configuration; Config.StreamID is the stream's ID.
	Config schemas.StreamConfiguration `json:"config"`
	// Owner is the client that created the stream; only it may read or change the stream (spec/ssf.md API-03).
	Owner string `json:"owner"`
	// Status is enabled, paused or disabled.
	Status schemas.StreamStatus `json:"status"`
	// StatusReason says why the stream has its status, if anyone said.
	StatusReason string `json:"status_reason,omitempty"`
	// SigningAlgorithm is the JWS algorithm of the stream's SETs (RS256 unless the stream asked otherwise).
	SigningAlgorithm string `json:"signing_alg"`
	// CreatedAt is when the stream was created.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when the configuration or status last changed.
	UpdatedAt time.Time `json:"updated_at"`
	// LastVerification is when a verification was last requested, for min_verification_interval.
	LastVerification time.Time `json:"last_verification,omitzero"`
	// LastActivity is when the receiver last did something that restarts the inactivity timer (SSF 1.0 §8.1.1).
	LastActivity time.Time `json:"last_activity,omitzero"`
	// PausedForInactivity is set when the transmitter itself paused the stream because inactivity_timeout passed;
	// the next receiver activity enables it again.
	PausedForInactivity bool `json:"paused_for_inactivity,omitempty"`
}

// ID returns the stream's ID.
func (s *Stream) ID() ID { return ID(s.Config.StreamID) }

// Clone returns a deep copy, so that a caller can change it without touching a shared value.
func (s *Stream) Clone() *Stream {
	c := *s
	cfg := &c.Config
	cfg.Audience = append(schemas.Audience(nil), s.Config.Audience...)
	cfg.EventsSupported = append([]schemas.EventType(nil), s.Config.EventsSupported...)
	cfg.EventsRequested = append([]schemas.EventType(nil), s.Config.EventsRequested...)
	cfg.EventsDelivered = append([]schemas.EventType{}, s.Config.EventsDelivered...)
	return &c
}

// Delivers reports whether events of type t travel on the stream: every event in events_delivered, and the SSF
// verification and stream-updated events always (SSF 1.0 §8.1.4.1, §8.1.5).
func (s *Stream) Delivers(t schemas.EventType) bool {
	if t == schemas.EventVerification || t == schemas.EventStreamUpdated {
		return true
	}
	for _, d := range s.Config.EventsDelivered {
		if d == t {
			return true
		}
	}
	return false
}

// Accepts reports whether the stream takes new SETs: enabled streams deliver them and paused streams hold them;
// disabled streams drop them (SSF 1.0 §8.1.2).
func (s *Stream) Accepts() bool {
	return s.Status == schemas.StatusEnabled || s.Status == schemas.StatusPaused
}

// Deliverable reports whether a SET queued at the given time may be delivered now: every SET while the stream
// is enabled, none while it is paused or disabled, except that a stream the transmitter paused for inactivity
// still delivers what was queued before the pause, ending with the stream-updated event that announced it
// (SSF 1.0 §8.1.5: the event goes out before delivery stops).
func (s *Stream) Deliverable(queued time.Time) bool {
	return s.Status == schemas.StatusEnabled ||
		s.PausedForInactivity && s.Status == schemas.StatusPaused && !queued.After(s.UpdatedAt)
}

// StatusResponse returns the stream's status as SSF 1.0 §8.1.2 returns it.
func (s *Stream) StatusResponse() schemas.StreamStatusResponse {
	return schemas.StreamStatusResponse{StreamID: s.Config.StreamID, Status: s.Status, Reason: s.StatusReason}
}
