package schemas

// StreamStatus is the status of a stream (SSF 1.0 §8.1.2): enabled, paused or disabled.
type StreamStatus string

// The SSF 1.0 §8.1.2 status values; lower case.
const (
	StatusEnabled  StreamStatus = "enabled"
	StatusPaused   StreamStatus = "paused"
	StatusDisabled StreamStatus = "disabled"
)

// ParseStreamStatus returns s as a StreamStatus, refusing any other value (spec/ssf.md ST-02).
func ParseStreamStatus(s string) (StreamStatus, error) {
	var c checker
	oneOf(&c, "/status", StreamStatus(s), true, "SSF 1.0 §8.1.2", StatusEnabled, StatusPaused, StatusDisabled)
	return StreamStatus(s), c.err()
}

// StreamUpdated says that the transmitter changed the status of the stream on its own initiative (SSF 1.0
// §8.1.5). Its subject is the stream itself.
type StreamUpdated struct {
	// Status is the new status. Required.
	Status StreamStatus `json:"status"`
	// Reason says why, in a short text.
	Reason string `json:"reason,omitempty"`
}

// EventType returns EventStreamUpdated.
func (*StreamUpdated) EventType() EventType { return EventStreamUpdated }

// Validate checks status.
func (e *StreamUpdated) Validate() error {
	var c checker
	oneOf(&c, "/status", e.Status, true, "SSF 1.0 §8.1.5", StatusEnabled, StatusPaused, StatusDisabled)
	return c.err()
}
