package schemas_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ssfd/ssfd/schemas"
)

// seedGolden adds every golden file of dir to the corpus.
func seedGolden(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", dir, "*.json"))
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err == nil {
			f.Add(data)
		}
	}
}

// FuzzParseSET: any input either parses to a SET that encodes and parses back to the same claims, or fails
// with ErrInvalid; it never panics.
func FuzzParseSET(f *testing.F) {
	seedGolden(f, "set")
	f.Add([]byte(`{"iss":"a","jti":"b","iat":1,"aud":["c"],"sub":"x","events":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := schemas.ParseSET(data, schemas.AcceptLegacy())
		if err != nil {
			if !errors.Is(err, schemas.ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		out, err := json.Marshal(set)
		if err != nil {
			t.Fatalf("a parsed SET must encode: %v", err)
		}
		again, err := schemas.ParseSET(out)
		if err != nil {
			t.Fatalf("an encoded SET must parse strictly: %v\n%s", err, out)
		}
		out2, _ := json.Marshal(again)
		if string(out) != string(out2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", out, out2)
		}
	})
}

// FuzzParseSubject: a parsed subject re-encodes to a form that parses to an equal subject, and equals itself.
func FuzzParseSubject(f *testing.F) {
	seedGolden(f, "subjects")
	f.Add([]byte(`{"subject_type":"phone","phone_number":"+12065550100"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := schemas.ParseSubject(data, schemas.AcceptLegacy())
		if err != nil {
			if !errors.Is(err, schemas.ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := schemas.ParseSubject(out)
		if err != nil {
			t.Fatalf("an encoded subject must parse strictly: %v\n%s", err, out)
		}
		if !again.Equal(s) || !s.Matches(s) {
			t.Fatalf("round trip changed the subject: %s vs %s", s, again)
		}
	})
}

// FuzzSubjectMatch: matching is symmetric and reflexive for every pair of valid subjects.
func FuzzSubjectMatch(f *testing.F) {
	f.Add([]byte(`{"format":"complex","tenant":{"format":"opaque","id":"a"}}`),
		[]byte(`{"format":"complex","tenant":{"format":"opaque","id":"a"},"user":{"format":"email","email":"x@y"}}`))
	f.Add([]byte(`{"format":"email","email":"x@y"}`),
		[]byte(`{"format":"aliases","identifiers":[{"format":"email","email":"x@y"}]}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		sa, errA := schemas.ParseSubject(a)
		sb, errB := schemas.ParseSubject(b)
		if errA != nil || errB != nil {
			return
		}
		if sa.Matches(sb) != sb.Matches(sa) {
			t.Fatalf("asymmetric: %s vs %s", sa, sb)
		}
		if !sa.Matches(sa) || !sb.Matches(sb) {
			t.Fatalf("not reflexive: %s / %s", sa, sb)
		}
		if sa.Equal(sb) && !sa.Matches(sb) {
			t.Fatalf("equal subjects must match: %s", sa)
		}
	})
}

// FuzzValidateEvent: the JSON Schema validator and the typed decoder never panic, and a payload the typed
// decoder accepts also passes the schema.
func FuzzValidateEvent(f *testing.F) {
	seedGolden(f, "events")
	f.Add([]byte(`{"credential_type":"x","change_type":"create"}`))
	types := schemas.KnownEventTypes()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, et := range types {
			schemaErr := schemas.ValidateEvent(et, data)
			_, typedErr := schemas.DecodePayload(et, data)
			if typedErr == nil && schemaErr != nil {
				t.Fatalf("%s: typed decoder accepted what the schema refuses: %v\n%s", et, schemaErr, data)
			}
		}
	})
}

// FuzzParsePollRequest: poll requests from the network parse or fail with ErrInvalid, never panic, and what
// parses has no negative maxEvents.
func FuzzParsePollRequest(f *testing.F) {
	f.Add([]byte(`{"maxEvents":0,"returnImmediately":true,"ack":["a"],"setErrs":{"b":{"err":"invalid_key","description":"x"}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := schemas.ParsePollRequest(data)
		if err != nil {
			if !errors.Is(err, schemas.ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		if r.MaxEvents != nil && *r.MaxEvents < 0 {
			t.Fatal("negative maxEvents accepted")
		}
	})
}

// FuzzParsePollResponse: poll responses from a transmitter parse or fail with ErrInvalid, never panic.
func FuzzParsePollResponse(f *testing.F) {
	f.Add([]byte(`{"sets":{"a":"x.y.z"},"moreAvailable":true}`))
	f.Add([]byte(`{"sets":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := schemas.ParsePollResponse(data)
		if err != nil {
			if !errors.Is(err, schemas.ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		if r.Sets == nil {
			t.Fatal("a parsed response always has sets")
		}
	})
}
