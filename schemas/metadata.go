package schemas

// DefaultSubjects says which subjects a new stream holds (SSF 1.0 §7.1): ALL or NONE.
type DefaultSubjects string

// The SSF 1.0 §7.1 default_subjects values.
const (
	DefaultSubjectsAll  DefaultSubjects = "ALL"
	DefaultSubjectsNone DefaultSubjects = "NONE"
)

// SpecVersion1 is the spec_version of SSF 1.0 Final.
const SpecVersion1 = "1_0"

// AuthorizationScheme names an authorization protocol the transmitter accepts (SSF 1.0 §7.1.1).
type AuthorizationScheme struct {
	// SpecURN names the protocol, e.g. urn:ietf:rfc:6749 for OAuth 2.0.
	SpecURN string `json:"spec_urn"`
}

// SchemeOAuth2 is the OAuth 2.0 authorization scheme (RFC 6749), required by the CAEP interoperability profile.
const SchemeOAuth2 = "urn:ietf:rfc:6749"

// TransmitterMetadata is the document served at /.well-known/ssf-configuration (SSF 1.0 §7.1). Members that would
// be empty arrays are omitted (spec/ssf.md MD-06).
type TransmitterMetadata struct {
	SpecVersion              string                `json:"spec_version,omitempty"`
	Issuer                   string                `json:"issuer"`
	JWKSURI                  string                `json:"jwks_uri,omitempty"`
	DeliveryMethodsSupported []DeliveryMethod      `json:"delivery_methods_supported,omitempty"`
	ConfigurationEndpoint    string                `json:"configuration_endpoint,omitempty"`
	StatusEndpoint           string                `json:"status_endpoint,omitempty"`
	AddSubjectEndpoint       string                `json:"add_subject_endpoint,omitempty"`
	RemoveSubjectEndpoint    string                `json:"remove_subject_endpoint,omitempty"`
	VerificationEndpoint     string                `json:"verification_endpoint,omitempty"`
	CriticalSubjectMembers   []string              `json:"critical_subject_members,omitempty"`
	AuthorizationSchemes     []AuthorizationScheme `json:"authorization_schemes,omitempty"`
	DefaultSubjects          DefaultSubjects       `json:"default_subjects,omitempty"`
}
