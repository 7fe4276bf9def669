package schemas

import "encoding/json"

// NewEmail returns an email identifier (RFC 9493 §3.2.2).
func NewEmail(email string) (Subject, error) { return newSimple(FormatEmail, "email", email) }

// NewIssSub returns an iss_sub identifier (RFC 9493 §3.2.4).
func NewIssSub(iss, sub string) (Subject, error) {
	return newSimple(FormatIssSub, "iss", iss, "sub", sub)
}

// NewOpaque returns an opaque identifier (RFC 9493 §3.2.5); SSF uses it for the stream itself (SSF 1.0 §8.1.4.1).
func NewOpaque(id string) (Subject, error) { return newSimple(FormatOpaque, "id", id) }

// NewAccount returns an account identifier for an acct: URI (RFC 9493 §3.2.1).
func NewAccount(uri string) (Subject, error) { return newSimple(FormatAccount, "uri", uri) }

// NewPhoneNumber returns a phone_number identifier for an E.164 number (RFC 9493 §3.2.6).
func NewPhoneNumber(number string) (Subject, error) {
	return newSimple(FormatPhoneNumber, "phone_number", number)
}

// NewDID returns a did identifier (RFC 9493 §3.2.3).
func NewDID(url string) (Subject, error) { return newSimple(FormatDID, "url", url) }

// NewURI returns a uri identifier (RFC 9493 §3.2.7).
func NewURI(uri string) (Subject, error) { return newSimple(FormatURI, "uri", uri) }

// NewJWTID returns a jwt_id identifier naming one JWT by its issuer and jti (SSF 1.0 §3.5.1).
func NewJWTID(iss, jti string) (Subject, error) {
	return newSimple(FormatJWTID, "iss", iss, "jti", jti)
}

// NewSAMLAssertionID returns a saml_assertion_id identifier (SSF 1.0 §3.5.2).
func NewSAMLAssertionID(issuer, assertionID string) (Subject, error) {
	return newSimple(FormatSAMLAssertionID, "issuer", issuer, "assertion_id", assertionID)
}

// NewIPAddresses returns an ip-addresses identifier (SSF 1.0 §3.5.3).
func NewIPAddresses(addrs ...string) (Subject, error) {
	return build(map[string]any{"format": FormatIPAddresses, "ip-addresses": addrs})
}

// NewAliases returns an aliases identifier listing identifiers of one subject (RFC 9493 §3.2.8).
func NewAliases(ids ...Subject) (Subject, error) {
	return build(map[string]any{"format": FormatAliases, "identifiers": ids})
}

// NewComplex returns a complex subject from named simple identifiers, e.g. {RoleUser: u, RoleTenant: t}
// (SSF 1.0 §3.3).
func NewComplex(members map[string]Subject) (Subject, error) {
	m := make(map[string]any, len(members)+1)
	for name, s := range members {
		m[name] = s
	}
	m["format"] = FormatComplex
	return build(m)
}

func newSimple(f Format, kv ...string) (Subject, error) {
	m := map[string]any{"format": f}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return build(m)
}

// build validates a constructed identifier through the same parser as wire input, so both obey one set of rules.
func build(m map[string]any) (Subject, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return Subject{}, err
	}
	return ParseSubject(data)
}
