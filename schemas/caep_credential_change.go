package schemas

import "regexp"

// CredentialType names a kind of credential (CAEP 1.0 §3.3). Values outside the list below are allowed when both
// parties agreed on them (spec/ssf.md CA-10), but must be lowercase tokens, so a wrong case such as "Password" is
// refused.
type CredentialType string

// The CAEP 1.0 §3.3 credential_type values.
const (
	CredentialPassword             CredentialType = "password"
	CredentialPIN                  CredentialType = "pin"
	CredentialX509                 CredentialType = "x509"
	CredentialFIDO2Platform        CredentialType = "fido2-platform"
	CredentialFIDO2Roaming         CredentialType = "fido2-roaming"
	CredentialFIDOU2F              CredentialType = "fido-u2f"
	CredentialVerifiableCredential CredentialType = "verifiable-credential"
	CredentialPhoneVoice           CredentialType = "phone-voice"
	CredentialPhoneSMS             CredentialType = "phone-sms"
	CredentialApp                  CredentialType = "app"
)

// credentialTypeToken is the shape every credential_type value, standard or agreed, must have.
var credentialTypeToken = regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]*$`)

// Known reports whether t is one of the CAEP 1.0 values.
func (t CredentialType) Known() bool {
	switch t {
	case CredentialPassword, CredentialPIN, CredentialX509, CredentialFIDO2Platform, CredentialFIDO2Roaming,
		CredentialFIDOU2F, CredentialVerifiableCredential, CredentialPhoneVoice, CredentialPhoneSMS, CredentialApp:
		return true
	}
	return false
}

func (t CredentialType) check(c *checker, path string) {
	switch {
	case t == "":
		c.add(path, "is required (CAEP 1.0 §3.3)")
	case !credentialTypeToken.MatchString(string(t)):
		c.add(path, "%q is neither a CAEP 1.0 credential type nor a lowercase agreed value (CAEP 1.0 §3.3)", t)
	}
}

// ChangeType says what happened to a credential (CAEP 1.0 §3.3).
type ChangeType string

// The CAEP 1.0 §3.3 change_type values.
const (
	ChangeCreate ChangeType = "create"
	ChangeRevoke ChangeType = "revoke"
	ChangeUpdate ChangeType = "update"
	ChangeDelete ChangeType = "delete"
)

// CredentialChange says that a credential of the subject was created, revoked, updated or deleted
// (CAEP 1.0 §3.3). EventTimestamp is when the credential changed.
type CredentialChange struct {
	// CredentialType is the kind of credential. Required.
	CredentialType CredentialType `json:"credential_type"`
	// ChangeType is what happened to it. Required.
	ChangeType ChangeType `json:"change_type"`
	// FriendlyName is the credential's name as the user knows it.
	FriendlyName string `json:"friendly_name,omitempty"`
	// X509Issuer is the issuer of an X.509 certificate credential.
	X509Issuer string `json:"x509_issuer,omitempty"`
	// X509Serial is the serial number of an X.509 certificate credential.
	X509Serial string `json:"x509_serial,omitempty"`
	// FIDO2AAGUID is the authenticator AAGUID of a FIDO2 credential.
	FIDO2AAGUID string `json:"fido2_aaguid,omitempty"`
	CAEPCommon
}

// EventType returns EventCredentialChange.
func (*CredentialChange) EventType() EventType { return EventCredentialChange }

// Validate checks credential_type, change_type and the common claims.
func (e *CredentialChange) Validate() error {
	var c checker
	e.CredentialType.check(&c, "/credential_type")
	oneOf(&c, "/change_type", e.ChangeType, true, "CAEP 1.0 §3.3", ChangeCreate, ChangeRevoke, ChangeUpdate, ChangeDelete)
	e.check(&c)
	return c.err()
}
