package schemas

// OptOutInitiated says that the user asked to opt out; events keep flowing for a grace period (RISC 1.0 §2.8.2). It has no attributes: its payload is {}.
type OptOutInitiated struct{}

// EventType returns EventOptOutInitiated.
func (*OptOutInitiated) EventType() EventType { return EventOptOutInitiated }

// Validate accepts every payload: the event has no attributes, and unknown members are ignored.
func (*OptOutInitiated) Validate() error { return nil }
