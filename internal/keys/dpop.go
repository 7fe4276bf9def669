package keys

// TypeDPoP is the typ of DPoP proofs (RFC 9449 §4.2).
const TypeDPoP = "dpop+jwt"

// DPoPAlgorithms are the algorithms ssfd accepts for DPoP proofs (spec/agent-auth.md §2.7): VerifyEmbedded's
// allow-list at the token endpoint and at resource servers.
var DPoPAlgorithms = []Algorithm{ES256, EdDSA}

// DPoPClaims are the claims of a DPoP proof (RFC 9449 §4.2): its id, the method and URL of the request it is
// for, when it was made, and, when it accompanies an access token, the token's hash.
type DPoPClaims struct {
	JTI      string `json:"jti"`
	Method   string `json:"htm"`
	URL      string `json:"htu"`
	IssuedAt *int64 `json:"iat"`
	ATH      string `json:"ath"`
}
