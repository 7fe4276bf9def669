package schemas

// RecoveryInformationChanged says that recovery data of the account changed (RISC 1.0 §2.10). It has no attributes: its payload is {}.
type RecoveryInformationChanged struct{}

// EventType returns EventRecoveryInformationChanged.
func (*RecoveryInformationChanged) EventType() EventType { return EventRecoveryInformationChanged }

// Validate accepts every payload: the event has no attributes, and unknown members are ignored.
func (*RecoveryInformationChanged) Validate() error { return nil }
