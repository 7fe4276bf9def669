package schemas

// Format names a subject identifier format (RFC 9493 §3, SSF 1.0 §3). Format names are compared
// case-sensitively (spec/ssf.md SUB-02).
type Format string

// The RFC 9493 formats, the formats SSF 1.0 §3.5 adds, and the complex form of SSF 1.0 §3.3.
const (
	FormatAccount         Format = "account"
	FormatEmail           Format = "email"
	FormatIssSub          Format = "iss_sub"
	FormatOpaque          Format = "opaque"
	FormatPhoneNumber     Format = "phone_number"
	FormatDID             Format = "did"
	FormatURI             Format = "uri"
	FormatAliases         Format = "aliases"
	FormatJWTID           Format = "jwt_id"
	FormatSAMLAssertionID Format = "saml_assertion_id"
	FormatIPAddresses     Format = "ip-addresses"
	FormatComplex         Format = "complex"
)

// The complex subject member names SSF 1.0 §3.3 defines, in the order they are emitted. Other names are allowed.
const (
	RoleUser        = "user"
	RoleDevice      = "device"
	RoleSession     = "session"
	RoleApplication = "application"
	RoleTenant      = "tenant"
	RoleOrgUnit     = "org_unit"
	RoleGroup       = "group"
)

var roleOrder = []string{RoleUser, RoleDevice, RoleSession, RoleApplication, RoleTenant, RoleOrgUnit, RoleGroup}

// stringMembers lists, per simple format whose members are strings, its required members in emitted order.
var stringMembers = map[Format][]string{
	FormatAccount:         {"uri"},
	FormatEmail:           {"email"},
	FormatIssSub:          {"iss", "sub"},
	FormatOpaque:          {"id"},
	FormatPhoneNumber:     {"phone_number"},
	FormatDID:             {"url"},
	FormatURI:             {"uri"},
	FormatJWTID:           {"iss", "jti"},
	FormatSAMLAssertionID: {"issuer", "assertion_id"},
}

// legacyFormats maps format names of earlier drafts and of Google's RISC transmitter to RFC 9493 names
// (spec/ssf.md §14.2, RI-02). They are accepted only with the AcceptLegacy parse option.
var legacyFormats = map[string]Format{
	"iss-sub":           FormatIssSub,
	"phone":             FormatPhoneNumber,
	"phone-number":      FormatPhoneNumber,
	"saml-assertion-id": FormatSAMLAssertionID,
	"jwt-id":            FormatJWTID,
}

// Known reports whether f is a format this package can parse.
func (f Format) Known() bool {
	_, ok := stringMembers[f]
	return ok || f == FormatIPAddresses || f == FormatAliases || f == FormatComplex
}

// ParseOption changes how lenient parsing is. The default is the SSF 1.0 Final vocabulary only.
type ParseOption func(*parseOptions)

type parseOptions struct {
	legacy bool
}

// AcceptLegacy accepts the identifiers of earlier drafts and of known peers (spec/ssf.md §14.2): the format names
// "phone", "phone-number", "iss-sub", "jwt-id" and "saml-assertion-id", Google's "subject_type" in place of
// "format" (RISC 1.0 §3.1), and a SET whose subject sits in the event payload instead of sub_id (SET-09). Parsed
// values always carry the SSF 1.0 names, so legacy names are never emitted again. Receivers that talk to older
// transmitters use it; the transmitter's intake does not.
func AcceptLegacy() ParseOption { return func(o *parseOptions) { o.legacy = true } }

func collect(opts []ParseOption) parseOptions {
	var o parseOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
