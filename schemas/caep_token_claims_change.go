package schemas

import "encoding/json"

// TokenClaimsChange says that claims of a token issued to the subject changed (CAEP 1.0 §3.2). The subject
// usually names the token with the jwt_id or saml_assertion_id format. EventTimestamp is when the claims changed.
type TokenClaimsChange struct {
	// Claims holds one or more claims with their new values. Required.
	Claims map[string]json.RawMessage `json:"claims"`
	CAEPCommon
}

// EventType returns EventTokenClaimsChange.
func (*TokenClaimsChange) EventType() EventType { return EventTokenClaimsChange }

// Validate checks that claims is present and not empty, and the common claims.
func (e *TokenClaimsChange) Validate() error {
	var c checker
	if len(e.Claims) == 0 {
		c.add("/claims", "is required and must hold at least one claim (CAEP 1.0 §3.2)")
	}
	e.check(&c)
	return c.err()
}
