package schemas

// RecoveryActivated says that the account started a recovery flow (RISC 1.0 §2.9). It has no attributes: its payload is {}.
type RecoveryActivated struct{}

// EventType returns EventRecoveryActivated.
func (*RecoveryActivated) EventType() EventType { return EventRecoveryActivated }

// Validate accepts every payload: the event has no attributes, and unknown members are ignored.
func (*RecoveryActivated) Validate() error { return nil }
