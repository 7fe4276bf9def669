package transmitter

import (
	"context"
	"encoding/json"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// subjectRequest decodes an add- or remove-subject body: stream_id, a valid subject, and for add the optional
// verified flag. Legacy format names such as "phone" are accepted on this input (spec/ssf.md SJ-15) and stored
// under their SSF 1.0 names.
func subjectRequest(body []byte) (streams.ID, schemas.Subject, error) {
	id, err := streamIDOf(body)
	if err != nil {
		return "", schemas.Subject{}, err
	}
	var req struct {
		Subject  json.RawMessage `json:"subject"`
		Verified *bool           `json:"verified"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return "", schemas.Subject{}, BadRequest("verified must be a boolean")
	}
	if len(req.Subject) == 0 {
		return "", schemas.Subject{}, BadRequest("subject is required")
	}
	subject, err := schemas.ParseSubject(req.Subject, schemas.AcceptLegacy())
	if err != nil {
		pe := protocolError(err).(*Error) //nolint:errorlint // protocolError maps every ValidationError to *Error
		for i := range pe.Problems {
			pe.Problems[i].Path = "/subject" + pe.Problems[i].Path
		}
		return "", schemas.Subject{}, pe
	}
	return id, subject, nil
}

// AddSubject puts a subject on a stream of p (SSF 1.0 §8.1.3.2). Adding states interest only; it does not
// promise events about the subject (spec/ssf.md SJ-05).
func (t *Transmitter) AddSubject(ctx context.Context, p Principal, body []byte) error {
	return t.setSubject(ctx, p, body, true)
}

// RemoveSubject takes a subject off a stream of p (SSF 1.0 §8.1.3.3). The stream's own subject cannot be
// removed (SUB-22); asking to is answered like any other removal and changes nothing.
func (t *Transmitter) RemoveSubject(ctx context.Context, p Principal, body []byte) error {
	return t.setSubject(ctx, p, body, false)
}

func (t *Transmitter) setSubject(ctx context.Context, p Principal, body []byte, include bool) error {
	id, subject, err := subjectRequest(body)
	if err != nil {
		return err
	}
	if _, err := t.own(ctx, p, id); err != nil {
		return err
	}
	if self, err := streams.StreamSubject(id); err == nil && self.Equal(subject) {
		return nil
	}
	if err := t.store.SetSubject(ctx, id, streams.SubjectEntry{Subject: subject, Included: include}); err != nil {
		return protocolError(err)
	}
	t.routes.invalidate()
	return nil
}
