package schemas

// SessionEstablished says that the transmitter established a session for the subject (CAEP 1.0 §3.6).
// EventTimestamp is when the session was established.
type SessionEstablished struct {
	// FingerprintUA is a fingerprint of the user agent computed by the transmitter.
	FingerprintUA string `json:"fp_ua,omitempty"`
	// ACR is the authentication context class reference, read as in an OpenID Connect ID Token.
	ACR string `json:"acr,omitempty"`
	// AMR lists the authentication methods, read as in an OpenID Connect ID Token.
	AMR []string `json:"amr,omitempty"`
	// ExternalID is an external session identifier, such as a federated SAML session's.
	ExternalID string `json:"ext_id,omitempty"`
	CAEPCommon
}

// EventType returns EventSessionEstablished.
func (*SessionEstablished) EventType() EventType { return EventSessionEstablished }

// Validate checks the common claims; every specific claim is optional.
func (e *SessionEstablished) Validate() error {
	var c checker
	e.check(&c)
	return c.err()
}
