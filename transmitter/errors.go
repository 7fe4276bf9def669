package transmitter

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// Error is a protocol error of the management API, the intake API or the poll endpoint: the HTTP status, an
// OAuth-style error code and a description safe to show the client (SSF 1.0 §8 status tables, RFC 6750 §3.1).
// internal/server renders it; anything that is not an *Error becomes a 500 with a fixed body.
type Error struct {
	Status      int
	Code        string
	Description string
	// Problems lists every problem of an invalid document, with its JSON Pointer.
	Problems []schemas.Problem
	// Header holds extra response headers, such as WWW-Authenticate or Retry-After.
	Header http.Header
}

// Error renders the code and description.
func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Description) }

// HTTPStatus returns the status code to answer with.
func (e *Error) HTTPStatus() int { return e.Status }

// HTTPHeader returns extra headers to send.
func (e *Error) HTTPHeader() http.Header { return e.Header }

// HTTPBody returns the JSON body: {"error", "error_description", "problems"}.
func (e *Error) HTTPBody() any {
	return struct {
		Error       string            `json:"error"`
		Description string            `json:"error_description,omitempty"`
		Problems    []schemas.Problem `json:"problems,omitempty"`
	}{e.Code, e.Description, e.Problems}
}

// BadRequest returns a 400 invalid_request error.
func BadRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: fmt.Sprintf(format, args...)}
}

// NotFound is the answer for a stream that does not exist for the caller (spec/ssf.md API-03): the same whether
// the stream is missing or belongs to another client.
func NotFound() *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Description: "no stream with this stream_id"}
}

// protocolError translates an error of the stream domain or of schemas into its protocol form at the boundary
// (STYLE.md rule 10). Errors it does not know are returned unchanged and end as a 500.
func protocolError(err error) error {
	var pe *Error
	var ve *schemas.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &ve):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "the request is not valid",
			Problems: ve.Problems}
	case errors.Is(err, streams.ErrNotFound):
		return NotFound()
	case errors.Is(err, streams.ErrInvalid), errors.Is(err, schemas.ErrInvalid):
		return BadRequest("%s", trimPrefix(err))
	case errors.Is(err, streams.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "conflict", Description: trimPrefix(err)}
	}
	return err
}

// tooSoon is the 429 answer to a verification request inside min_verification_interval (spec/ssf.md VF-20).
func tooSoon(retry time.Duration) *Error {
	secs := int(retry.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &Error{Status: http.StatusTooManyRequests, Code: "too_many_requests",
		Description: "verification requested before min_verification_interval passed",
		Header:      http.Header{"Retry-After": []string{strconv.Itoa(secs)}}}
}

// trimPrefix drops the "streams: invalid request: " style prefix of a domain error for the client.
func trimPrefix(err error) string {
	msg := err.Error()
	for _, sentinel := range []error{streams.ErrInvalid, streams.ErrConflict, schemas.ErrInvalid} {
		if p := sentinel.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
			return msg[len(p):]
		}
	}
	return msg
}
