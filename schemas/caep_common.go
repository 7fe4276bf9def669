package schemas

import "regexp"

// LangMap maps BCP 47 language tags to text, the shape of CAEP reason_admin and reason_user (CAEP 1.0 §2):
// {"en": "...", "de": "..."}. A plain string is not a LangMap (spec/ssf.md CA-01).
type LangMap map[string]string

// langTag is the loose BCP 47 shape checked for the keys of a LangMap.
var langTag = regexp.MustCompile(`^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$`)

func (m LangMap) check(c *checker, path string) {
	if m == nil {
		return
	}
	if len(m) == 0 {
		c.add(path, "must hold at least one language tag (CAEP 1.0 §2)")
	}
	for tag, text := range m {
		if !langTag.MatchString(tag) {
			c.add(pointer(path, tag), "%q is not a BCP 47 language tag", tag)
		}
		if text == "" {
			c.add(pointer(path, tag), "must not be empty")
		}
	}
}

// InitiatingEntity says what kind of entity caused a CAEP event (CAEP 1.0 §2).
type InitiatingEntity string

// The CAEP 1.0 §2 initiating_entity values; compare case-sensitively.
const (
	InitiatedByAdmin  InitiatingEntity = "admin"
	InitiatedByUser   InitiatingEntity = "user"
	InitiatedByPolicy InitiatingEntity = "policy"
	InitiatedBySystem InitiatingEntity = "system"
)

// CAEPCommon holds the optional claims every CAEP event may carry (CAEP 1.0 §2). Event types embed it.
type CAEPCommon struct {
	// EventTimestamp is when the event happened; each event type says which moment that is.
	EventTimestamp NumericDate `json:"event_timestamp,omitzero"`
	// InitiatingEntity is admin, user, policy or system.
	InitiatingEntity InitiatingEntity `json:"initiating_entity,omitempty"`
	// ReasonAdmin is a reason for administrators and logs, by language.
	ReasonAdmin LangMap `json:"reason_admin,omitempty"`
	// ReasonUser is a reason fit to show the end user, by language.
	ReasonUser LangMap `json:"reason_user,omitempty"`
}

func (cc *CAEPCommon) check(c *checker) {
	switch cc.InitiatingEntity {
	case "", InitiatedByAdmin, InitiatedByUser, InitiatedByPolicy, InitiatedBySystem:
	default:
		c.add("/initiating_entity", "%q is not one of admin, user, policy, system (CAEP 1.0 §2; case-sensitive)",
			cc.InitiatingEntity)
	}
	cc.ReasonAdmin.check(c, "/reason_admin")
	cc.ReasonUser.check(c, "/reason_user")
}

// oneOf adds a problem at path unless v is empty (and optional) or one of allowed.
func oneOf[T ~string](c *checker, path string, v T, required bool, section string, allowed ...T) {
	if v == "" {
		if required {
			c.add(path, "is required (%s)", section)
		}
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	c.add(path, "%q is not one of %v (%s; case-sensitive)", v, allowed, section)
}
