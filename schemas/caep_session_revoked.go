package schemas

// SessionRevoked says that a session of the subject was revoked (CAEP 1.0 §3.1). It has no claims of its own;
// the subject names the session. EventTimestamp is when the session was revoked.
type SessionRevoked struct {
	CAEPCommon
}

// EventType returns EventSessionRevoked.
func (*SessionRevoked) EventType() EventType { return EventSessionRevoked }

// Validate checks the common claims.
func (e *SessionRevoked) Validate() error {
	var c checker
	e.check(&c)
	return c.err()
}
