package schemas

// CredentialCompromise says that a credential of the subject is known to be compromised (RISC 1.0 §2.7).
type CredentialCompromise struct {
	// CredentialType uses the CAEP credential-change values. Required.
	CredentialType CredentialType `json:"credential_type"`
	// EventTimestamp is when the transmitter discovered the compromise.
	EventTimestamp NumericDate `json:"event_timestamp,omitzero"`
	// ReasonAdmin is a reason for administrators, by language (the CAEP shape).
	ReasonAdmin LangMap `json:"reason_admin,omitempty"`
	// ReasonUser is a reason for the end user, by language (the CAEP shape).
	ReasonUser LangMap `json:"reason_user,omitempty"`
}

// EventType returns EventCredentialCompromise.
func (*CredentialCompromise) EventType() EventType { return EventCredentialCompromise }

// Validate checks credential_type and the reasons.
func (e *CredentialCompromise) Validate() error {
	var c checker
	e.CredentialType.check(&c, "/credential_type")
	e.ReasonAdmin.check(&c, "/reason_admin")
	e.ReasonUser.check(&c, "/reason_user")
	return c.err()
}
