package schemas

// OptOutCancelled says that an opt-out was cancelled; the account is back in the opt-in state (RISC 1.0 §2.8.3). It has no attributes: its payload is {}.
type OptOutCancelled struct{}

// EventType returns EventOptOutCancelled.
func (*OptOutCancelled) EventType() EventType { return EventOptOutCancelled }

// Validate accepts every payload: the event has no attributes, and unknown members are ignored.
func (*OptOutCancelled) Validate() error { return nil }
