package schemas

// ComplianceStatus is the compliance of a device with the transmitter's policy (CAEP 1.0 §3.5).
type ComplianceStatus string

// The CAEP 1.0 §3.5 status values.
const (
	Compliant    ComplianceStatus = "compliant"
	NotCompliant ComplianceStatus = "not-compliant"
)

// DeviceComplianceChange says that a device's compliance status changed (CAEP 1.0 §3.5). EventTimestamp is
// when the status changed.
type DeviceComplianceChange struct {
	// PreviousStatus is the status before the change. Required.
	PreviousStatus ComplianceStatus `json:"previous_status"`
	// CurrentStatus is the status now. Required.
	CurrentStatus ComplianceStatus `json:"current_status"`
	CAEPCommon
}

// EventType returns EventDeviceComplianceChange.
func (*DeviceComplianceChange) EventType() EventType { return EventDeviceComplianceChange }

// Validate checks both statuses and the common claims.
func (e *DeviceComplianceChange) Validate() error {
	var c checker
	oneOf(&c, "/previous_status", e.PreviousStatus, true, "CAEP 1.0 §3.5", Compliant, NotCompliant)
	oneOf(&c, "/current_status", e.CurrentStatus, true, "CAEP 1.0 §3.5", Compliant, NotCompliant)
	e.check(&c)
	return c.err()
}
