package schemas

// AccountEnabled says that the account was enabled (RISC 1.0 §2.4). It has no attributes: its payload is {}.
type AccountEnabled struct{}

// EventType returns EventAccountEnabled.
func (*AccountEnabled) EventType() EventType { return EventAccountEnabled }

// Validate accepts every payload: the event has no attributes, and unknown members are ignored.
func (*AccountEnabled) Validate() error { return nil }
