package schemas

// SessionsRevoked says that all sessions of the account were revoked. Deprecated by RISC 1.0: new transmitters send SessionRevoked; receivers treat it as a CAEP session-revoked on the whole account (RISC 1.0 §2.11). It has no attributes: its payload is {}.
type SessionsRevoked struct{}

// EventType returns EventSessionsRevoked.
func (*SessionsRevoked) EventType() EventType { return EventSessionsRevoked }

// Validate accepts every payload: the event has no attributes, and unknown members are ignored.
func (*SessionsRevoked) Validate() error { return nil }
