package schemas

// OptOutEffective says that the opt-out took effect; the account no longer takes part (RISC 1.0 §2.8.4). It has no attributes: its payload is {}.
type OptOutEffective struct{}

// EventType returns EventOptOutEffective.
func (*OptOutEffective) EventType() EventType { return EventOptOutEffective }

// Validate accepts every payload: the event has no attributes, and unknown members are ignored.
func (*OptOutEffective) Validate() error { return nil }
