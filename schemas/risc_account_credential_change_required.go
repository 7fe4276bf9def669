package schemas

// AccountCredentialChangeRequired says that the account was required to change a credential, e.g. a forced password change (RISC 1.0 §2.1). It has no attributes: its payload is {}.
type AccountCredentialChangeRequired struct{}

// EventType returns EventAccountCredentialChangeRequired.
func (*AccountCredentialChangeRequired) EventType() EventType {
	return EventAccountCredentialChangeRequired
}

// Validate accepts every payload: the event has no attributes, and unknown members are ignored.
func (*AccountCredentialChangeRequired) Validate() error { return nil }
