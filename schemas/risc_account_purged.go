package schemas

// AccountPurged says that the account was permanently deleted (RISC 1.0 §2.2). It has no attributes: its payload is {}.
type AccountPurged struct{}

// EventType returns EventAccountPurged.
func (*AccountPurged) EventType() EventType { return EventAccountPurged }

// Validate accepts every payload: the event has no attributes, and unknown members are ignored.
func (*AccountPurged) Validate() error { return nil }
