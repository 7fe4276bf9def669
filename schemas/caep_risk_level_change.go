package schemas

import "regexp"

// RiskLevel is a CAEP risk level (CAEP 1.0 §3.8): upper case.
type RiskLevel string

// The CAEP 1.0 §3.8 risk levels.
const (
	RiskLow    RiskLevel = "LOW"
	RiskMedium RiskLevel = "MEDIUM"
	RiskHigh   RiskLevel = "HIGH"
)

// Principal is the kind of entity whose risk changed (CAEP 1.0 §3.8): USER, DEVICE, SESSION, TENANT, ORG_UNIT,
// GROUP, or another SSF principal type in the same upper-case form.
type Principal string

// The CAEP 1.0 §3.8 principal values.
const (
	PrincipalUser    Principal = "USER"
	PrincipalDevice  Principal = "DEVICE"
	PrincipalSession Principal = "SESSION"
	PrincipalTenant  Principal = "TENANT"
	PrincipalOrgUnit Principal = "ORG_UNIT"
	PrincipalGroup   Principal = "GROUP"
)

var principalToken = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// RiskLevelChange says that the transmitter's risk assessment of a principal changed (CAEP 1.0 §3.8).
// EventTimestamp is when the change was assessed.
type RiskLevelChange struct {
	// Principal is the kind of entity assessed. Required.
	Principal Principal `json:"principal"`
	// CurrentLevel is the risk now. Required.
	CurrentLevel RiskLevel `json:"current_level"`
	// PreviousLevel is the risk before; when absent, receivers treat it as unknown.
	PreviousLevel RiskLevel `json:"previous_level,omitempty"`
	// RiskReason says why, e.g. PASSWORD_FOUND_IN_DATA_BREACH. Recommended.
	RiskReason string `json:"risk_reason,omitempty"`
	CAEPCommon
}

// EventType returns EventRiskLevelChange.
func (*RiskLevelChange) EventType() EventType { return EventRiskLevelChange }

// Validate checks principal, the levels and the common claims.
func (e *RiskLevelChange) Validate() error {
	var c checker
	switch {
	case e.Principal == "":
		c.add("/principal", "is required (CAEP 1.0 §3.8)")
	case !principalToken.MatchString(string(e.Principal)):
		c.add("/principal", "%q is not an upper-case principal type such as USER or DEVICE (CAEP 1.0 §3.8)", e.Principal)
	}
	oneOf(&c, "/current_level", e.CurrentLevel, true, "CAEP 1.0 §3.8", RiskLow, RiskMedium, RiskHigh)
	oneOf(&c, "/previous_level", e.PreviousLevel, false, "CAEP 1.0 §3.8", RiskLow, RiskMedium, RiskHigh)
	e.check(&c)
	return c.err()
}
