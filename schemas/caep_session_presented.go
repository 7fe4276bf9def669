package schemas

// SessionPresented says that the transmitter observed the subject's session being presented (CAEP 1.0 §3.7).
// EventTimestamp is when the transmitter observed it.
type SessionPresented struct {
	// FingerprintUA is a fingerprint of the user agent computed by the transmitter.
	FingerprintUA string `json:"fp_ua,omitempty"`
	// ExternalID is an external session identifier.
	ExternalID string `json:"ext_id,omitempty"`
	CAEPCommon
}

// EventType returns EventSessionPresented.
func (*SessionPresented) EventType() EventType { return EventSessionPresented }

// Validate checks the common claims; every specific claim is optional.
func (e *SessionPresented) Validate() error {
	var c checker
	e.check(&c)
	return c.err()
}
