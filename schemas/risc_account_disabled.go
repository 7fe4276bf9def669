package schemas

// DisableReason says why an account was disabled (RISC 1.0 §2.3).
type DisableReason string

// The RISC 1.0 §2.3 reason values.
const (
	DisabledForHijacking   DisableReason = "hijacking"
	DisabledForBulkAccount DisableReason = "bulk-account"
)

// AccountDisabled says that the account was disabled and may be enabled again later (RISC 1.0 §2.3).
type AccountDisabled struct {
	// Reason is hijacking or bulk-account. Optional.
	Reason DisableReason `json:"reason,omitempty"`
}

// EventType returns EventAccountDisabled.
func (*AccountDisabled) EventType() EventType { return EventAccountDisabled }

// Validate checks reason.
func (e *AccountDisabled) Validate() error {
	var c checker
	oneOf(&c, "/reason", e.Reason, false, "RISC 1.0 §2.3", DisabledForHijacking, DisabledForBulkAccount)
	return c.err()
}
