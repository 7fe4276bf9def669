package schemas

// IdentifierChanged says that the identifier in the subject (an email or phone_number holding the OLD value)
// changed (RISC 1.0 §2.5). It should be sent only by the provider authoritative for the identifier.
type IdentifierChanged struct {
	// NewValue is the new identifier. Note the hyphen in the member name "new-value".
	NewValue string `json:"new-value,omitempty"`
}

// EventType returns EventIdentifierChanged.
func (*IdentifierChanged) EventType() EventType { return EventIdentifierChanged }

// Validate accepts every payload whose members have the right JSON types.
func (*IdentifierChanged) Validate() error { return nil }
