package schemas

// ErrorCode is a Security Event Token error code from the IANA registry (RFC 8935 §2.4, SSF §11), used in push
// error responses and in poll setErrs.
type ErrorCode string

// The RFC 8935 §2.4 error codes and the one SSF adds (spec/ssf.md PU-23).
const (
	// ErrInvalidRequest: the body is not a parseable SET, or the event does not fit its definition.
	ErrInvalidRequest ErrorCode = "invalid_request"
	// ErrInvalidKey: a signing or encryption key is invalid or unacceptable.
	ErrInvalidKey ErrorCode = "invalid_key"
	// ErrInvalidIssuer: the receiver does not accept this SET issuer.
	ErrInvalidIssuer ErrorCode = "invalid_issuer"
	// ErrInvalidAudience: the SET aud does not identify this receiver.
	ErrInvalidAudience ErrorCode = "invalid_audience"
	// ErrAuthenticationFailed: the receiver could not authenticate the transmitter.
	ErrAuthenticationFailed ErrorCode = "authentication_failed"
	// ErrAccessDenied: the transmitter is not authorised to send this SET to this receiver.
	ErrAccessDenied ErrorCode = "access_denied"
	// ErrInvalidState: a verification event's state did not match the requested one (SSF §8.1.4.2).
	ErrInvalidState ErrorCode = "invalid_state"
)

// Known reports whether c is one of the registered codes above.
func (c ErrorCode) Known() bool {
	switch c {
	case ErrInvalidRequest, ErrInvalidKey, ErrInvalidIssuer, ErrInvalidAudience,
		ErrAuthenticationFailed, ErrAccessDenied, ErrInvalidState:
		return true
	}
	return false
}

// Permanent reports whether a transmitter should stop retrying a SET answered with c and dead-letter it
// (spec/ssf.md PU-23): the SET, the keys or the configuration is wrong, and sending the same SET again cannot
// help until an operator fixes it and redrives the dead letter. authentication_failed and access_denied may be
// transient (credentials being refreshed) and are retried.
func (c ErrorCode) Permanent() bool {
	switch c {
	case ErrInvalidRequest, ErrInvalidKey, ErrInvalidIssuer, ErrInvalidAudience, ErrInvalidState:
		return true
	}
	return false
}

// SETError is the body of an RFC 8935 §2.3 error response and the value of an RFC 8936 setErrs entry.
type SETError struct {
	Err         ErrorCode `json:"err"`
	Description string    `json:"description"`
}

// Error renders the code and description.
func (e *SETError) Error() string {
	if e.Description == "" {
		return string(e.Err)
	}
	return string(e.Err) + ": " + e.Description
}
