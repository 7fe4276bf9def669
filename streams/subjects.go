package streams

import "github.com/ssfd/ssfd/schemas"

// Carries reports whether a stream with the given subject entries carries an event about subject, under the
// transmitter's default_subjects policy (SSF 1.0 §7.1, §8.1.3.1): with ALL, every event except those about an
// excluded subject; with NONE, only events about an included subject that is not also excluded. Subjects
// match by schemas.Subject.Matches, so complex subjects match with absent members as wildcards.
func Carries(policy schemas.DefaultSubjects, entries []SubjectEntry, subject schemas.Subject) bool {
	included := policy == schemas.DefaultSubjectsAll
	for _, e := range entries {
		if !e.Subject.Matches(subject) {
			continue
		}
		if !e.Included {
			return false
		}
		included = true
	}
	return included
}

// StreamSubject returns the subject that identifies the stream itself, {"format":"opaque","id":<stream_id>}: the
// sub_id of verification and stream-updated events (SSF 1.0 §8.1.4.1). It is always on the stream and cannot be
// removed (spec/ssf.md SUB-22).
func StreamSubject(id ID) (schemas.Subject, error) {
	return schemas.NewOpaque(string(id))
}
