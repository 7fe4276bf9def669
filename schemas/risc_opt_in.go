package schemas

// OptIn says that the account takes part in RISC exchange (state opt-in) (RISC 1.0 §2.8.1). It has no attributes: its payload is {}.
type OptIn struct{}

// EventType returns EventOptIn.
func (*OptIn) EventType() EventType { return EventOptIn }

// Validate accepts every payload: the event has no attributes, and unknown members are ignored.
func (*OptIn) Validate() error { return nil }
