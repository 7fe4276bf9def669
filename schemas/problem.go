package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrInvalid is wrapped by every error this package returns for a document that breaks a rule of SSF 1.0,
// CAEP 1.0, RISC 1.0 or RFC 9493. Check for it with errors.Is; use errors.As with *ValidationError for details.
var ErrInvalid = errors.New("schemas: invalid")

// ErrUnknownFormat is wrapped when a subject identifier names a format this package does not know
// (spec/ssf.md SUB-04). Receivers may treat such a subject as matching nothing instead of as an error.
var ErrUnknownFormat = errors.New("schemas: unknown subject identifier format")

// Problem is one thing wrong with a document: where (Path, an RFC 6901 JSON Pointer into the document; ""
// is the whole document) and what (Message).
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// String renders the problem as "path: message".
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// ValidationError reports every problem found in a document, with the RFC 8935 error code a receiver answers
// with (SSF §1.3: payloads that do not fit their definition are invalid_request).
type ValidationError struct {
	Code     ErrorCode
	Problems []Problem
	unknown  bool // one of the problems is an unknown subject format
}

// Error joins the problems into one line.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid: " + strings.Join(parts, "; ")
}

// Is reports ErrInvalid for every ValidationError, and ErrUnknownFormat when a subject format was unknown.
func (e *ValidationError) Is(target error) bool {
	return target == ErrInvalid || (target == ErrUnknownFormat && e.unknown) //nolint:errorlint // sentinel identity
}

// checker collects problems while a document is walked.
type checker struct {
	problems []Problem
	unknown  bool
	// within is set once the outermost object was split: the members are then valid JSON in a private copy, and
	// objects inside them are split without validating or copying them again.
	within bool
}

func (c *checker) add(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// merge adds the problems of err (found under prefix) to c; any other error is added as one problem.
func (c *checker) merge(prefix string, err error) {
	if err == nil {
		return
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			c.problems = append(c.problems, Problem{Path: prefix + p.Path, Message: p.Message})
		}
		c.unknown = c.unknown || ve.unknown
		return
	}
	c.add(prefix, "%v", err)
}

// err returns nil when no problem was found, otherwise a *ValidationError with code invalid_request.
func (c *checker) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return &ValidationError{Code: ErrInvalidRequest, Problems: c.problems, unknown: c.unknown}
}

// pointer appends one reference token to an RFC 6901 JSON Pointer, escaping "~" and "/".
func pointer(base, token string) string {
	token = strings.ReplaceAll(token, "~", "~0")
	token = strings.ReplaceAll(token, "/", "~1")
	return base + "/" + token
}

// DescribeJSONError says what is wrong with a JSON body that did not decode, in words fit for the client that
// sent it: where the syntax broke, which field has the wrong type, which field is unknown (with a decoder that
// disallows them), or that the body is too large. It never echoes the input or Go type names.
func DescribeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("%s must not be a JSON %s", te.Field, te.Value)
	case errors.As(err, &te):
		return "unexpected JSON " + te.Value
	case errors.As(err, &mbe):
		return fmt.Sprintf("the body is larger than %d bytes", mbe.Limit)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown member " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the body is empty or cut short"
	}
	return "malformed JSON"
}
