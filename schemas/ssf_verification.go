package schemas

// Verification is the SSF verification event (SSF 1.0 §8.1.4.1). Its subject is the stream itself
// ({"format":"opaque","id":<stream_id>}).
type Verification struct {
	// State echoes the state of the verification request unchanged; it is absent when the transmitter sent the
	// event on its own initiative.
	State string `json:"state,omitempty"`
}

// EventType returns EventVerification.
func (*Verification) EventType() EventType { return EventVerification }

// Validate accepts every payload whose members have the right JSON types.
func (*Verification) Validate() error { return nil }
