package transmitter

import (
	"github.com/ssfd/ssfd/schemas"
)

// The paths of the transmitter's endpoints, below the issuer's path.
const (
	PathConfiguration = "/ssf/streams"
	PathStatus        = "/ssf/status"
	PathAddSubject    = "/ssf/subjects:add"
	PathRemoveSubject = "/ssf/subjects:remove"
	PathVerification  = "/ssf/verify"
	PathPoll          = "/ssf/poll"
	PathJWKS          = "/jwks.json"
	// WellKnownPath is the metadata location, inserted between host and issuer path (SSF 1.0 §7.2).
	WellKnownPath = "/.well-known/ssf-configuration"
)

// endpoint returns the absolute URL of an endpoint path below the issuer.
func (t *Transmitter) endpoint(path string) string {
	u := *t.issuerURL
	u.Path += path
	return u.String()
}

// MetadataPath returns the path at which the metadata is served: /.well-known/ssf-configuration followed by the
// issuer's path, if any (spec/ssf.md MD-01).
func (t *Transmitter) MetadataPath() string { return WellKnownPath + t.issuerURL.Path }

// BasePath returns the issuer's path, below which every transmitter endpoint lives.
func (t *Transmitter) BasePath() string { return t.issuerURL.Path }

// Metadata returns the transmitter metadata (SSF 1.0 §7.1), computed from what is registered: the delivery
// methods streams may use, the endpoints, and the authorization scheme. No member is an empty array (MD-06).
func (t *Transmitter) Metadata() schemas.TransmitterMetadata { return t.metadata }

func (t *Transmitter) computeMetadata() schemas.TransmitterMetadata {
	return schemas.TransmitterMetadata{
		SpecVersion:              schemas.SpecVersion1,
		Issuer:                   t.issuer,
		JWKSURI:                  t.endpoint(PathJWKS),
		DeliveryMethodsSupported: append([]schemas.DeliveryMethod(nil), t.policy.DeliveryMethods...),
		ConfigurationEndpoint:    t.endpoint(PathConfiguration),
		StatusEndpoint:           t.endpoint(PathStatus),
		AddSubjectEndpoint:       t.endpoint(PathAddSubject),
		RemoveSubjectEndpoint:    t.endpoint(PathRemoveSubject),
		VerificationEndpoint:     t.endpoint(PathVerification),
		AuthorizationSchemes:     []schemas.AuthorizationScheme{{SpecURN: schemas.SchemeOAuth2}},
		DefaultSubjects:          t.subjects,
	}
}
