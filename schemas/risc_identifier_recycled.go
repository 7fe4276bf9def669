package schemas

// IdentifierRecycled says that the identifier in the subject (an email or phone_number) now belongs to someone else (RISC 1.0 §2.6). It has no attributes: its payload is {}.
type IdentifierRecycled struct{}

// EventType returns EventIdentifierRecycled.
func (*IdentifierRecycled) EventType() EventType { return EventIdentifierRecycled }

// Validate accepts every payload: the event has no attributes, and unknown members are ignored.
func (*IdentifierRecycled) Validate() error { return nil }
