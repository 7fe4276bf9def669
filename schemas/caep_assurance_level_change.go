package schemas

// AssuranceNamespace names the scheme an assurance level belongs to (CAEP 1.0 §3.4).
type AssuranceNamespace string

// The CAEP 1.0 §3.4 namespace values.
const (
	NamespaceRFC8176     AssuranceNamespace = "RFC8176"
	NamespaceRFC6711     AssuranceNamespace = "RFC6711"
	NamespaceISOIEC29115 AssuranceNamespace = "ISO-IEC-29115"
	NamespaceNISTIAL     AssuranceNamespace = "NIST-IAL"
	NamespaceNISTAAL     AssuranceNamespace = "NIST-AAL"
	NamespaceNISTFAL     AssuranceNamespace = "NIST-FAL"
)

// ChangeDirection says whether an assurance level went up or down (CAEP 1.0 §3.4).
type ChangeDirection string

// The CAEP 1.0 §3.4 change_direction values.
const (
	DirectionIncrease ChangeDirection = "increase"
	DirectionDecrease ChangeDirection = "decrease"
)

// AssuranceLevelChange says that the authentication assurance level of the subject changed (CAEP 1.0 §3.4).
// EventTimestamp is when the level changed.
type AssuranceLevelChange struct {
	// Namespace is the scheme of the levels. Required.
	Namespace AssuranceNamespace `json:"namespace"`
	// CurrentLevel is the level now, a value in Namespace. Required.
	CurrentLevel string `json:"current_level"`
	// PreviousLevel is the level before; when absent, receivers treat it as unknown to the transmitter.
	PreviousLevel string `json:"previous_level,omitempty"`
	// ChangeDirection is increase or decrease; it should be present when PreviousLevel is.
	ChangeDirection ChangeDirection `json:"change_direction,omitempty"`
	CAEPCommon
}

// EventType returns EventAssuranceLevelChange.
func (*AssuranceLevelChange) EventType() EventType { return EventAssuranceLevelChange }

// Validate checks namespace, the levels, change_direction and the common claims.
func (e *AssuranceLevelChange) Validate() error {
	var c checker
	oneOf(&c, "/namespace", e.Namespace, true, "CAEP 1.0 §3.4", NamespaceRFC8176, NamespaceRFC6711,
		NamespaceISOIEC29115, NamespaceNISTIAL, NamespaceNISTAAL, NamespaceNISTFAL)
	if e.CurrentLevel == "" {
		c.add("/current_level", "is required (CAEP 1.0 §3.4)")
	}
	oneOf(&c, "/change_direction", e.ChangeDirection, false, "CAEP 1.0 §3.4", DirectionIncrease, DirectionDecrease)
	e.check(&c)
	return c.err()
}
