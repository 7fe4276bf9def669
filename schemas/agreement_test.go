package schemas_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ssfd/ssfd/schemas"
)

// The typed parsers are the fast path that receivers run on every SET; the JSON Schemas are the published
// contract. These cases hold both to the same verdict and the same JSON Pointer, so that they cannot drift apart.
func TestTypedParsersAndJSONSchemasAgree(t *testing.T) {
	type check struct {
		typed  func([]byte) error
		schema func([]byte) error
	}
	event := func(et schemas.EventType) check {
		return check{
			typed:  func(b []byte) error { _, err := schemas.DecodePayload(et, b); return err },
			schema: func(b []byte) error { return schemas.ValidateEvent(et, b) },
		}
	}
	subject := check{
		typed:  func(b []byte) error { _, err := schemas.ParseSubject(b); return err },
		schema: schemas.ValidateSubject,
	}
	set := check{
		typed:  func(b []byte) error { _, err := schemas.ParseSET(b); return err },
		schema: schemas.ValidateSET,
	}
	const sub = `"sub_id":{"format":"opaque","id":"s"}`
	const sr = `"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{}}`
	const base = `"iss":"https://tx","jti":"j","iat":1767225600,"aud":"https://rx"`
	cases := []struct {
		name string
		c    check
		doc  string
		path string
	}{
		{"initiating_entity in the wrong case", event(schemas.EventSessionRevoked), `{"initiating_entity":"Admin"}`, "/initiating_entity"},
		{"reason_admin as a string", event(schemas.EventSessionRevoked), `{"reason_admin":"x"}`, "/reason_admin"},
		{"credential_type in the wrong case", event(schemas.EventCredentialChange), `{"credential_type":"Password","change_type":"update"}`, "/credential_type"},
		{"change_type in the wrong case", event(schemas.EventCredentialChange), `{"credential_type":"password","change_type":"Update"}`, "/change_type"},
		{"missing change_type", event(schemas.EventCredentialChange), `{"credential_type":"password"}`, ""},
		{"compliance status in the wrong case", event(schemas.EventDeviceComplianceChange), `{"previous_status":"compliant","current_status":"Compliant"}`, "/current_status"},
		{"risk level in lower case", event(schemas.EventRiskLevelChange), `{"principal":"USER","current_level":"high"}`, "/current_level"},
		{"stream-updated without status", event(schemas.EventStreamUpdated), `{}`, ""},
		{"disable reason in the wrong case", event(schemas.EventAccountDisabled), `{"reason":"Hijacking"}`, "/reason"},
		{"phone alias", subject, `{"format":"phone","phone_number":"+442071838750"}`, "/format"},
		{"unknown format", subject, `{"format":"unknown-format"}`, "/format"},
		{"email without email", subject, `{"format":"email"}`, ""},
		{"iss_sub with an extra member", subject, `{"format":"iss_sub","iss":"https://i","sub":"s","foo":"x"}`, ""},
		{"nested complex", subject, `{"format":"complex","user":{"format":"complex","device":{"format":"opaque","id":"d"}}}`, "/user"},
		{"nested aliases", subject, `{"format":"aliases","identifiers":[{"format":"aliases","identifiers":[{"format":"opaque","id":"x"}]}]}`, "/identifiers/0"},
		{"invalid IP address", subject, `{"format":"ip-addresses","ip-addresses":["999.1.1.1"]}`, "/ip-addresses/0"},
		{"SET with sub", set, `{` + base + `,"sub":"u",` + sub + `,` + sr + `}`, "/sub"},
		{"SET with exp", set, `{` + base + `,"exp":1767229200,` + sub + `,` + sr + `}`, "/exp"},
		{"SET with two events", set, `{` + base + `,` + sub + `,"events":{"https://a.example/e1":{},"https://a.example/e2":{}}}`, "/events"},
		{"SET without sub_id", set, `{` + base + `,` + sr + `}`, ""},
		{"SET whose event breaks its schema", set, `{` + base + `,` + sub + `,"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{"initiating_entity":"Admin"}}}`,
			"/events/https:~1~1schemas.openid.net~1secevent~1caep~1event-type~1session-revoked/initiating_entity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			typedErr, schemaErr := tc.c.typed([]byte(tc.doc)), tc.c.schema([]byte(tc.doc))
			if !errors.Is(typedErr, schemas.ErrInvalid) {
				t.Fatalf("typed parser accepted it: %v", typedErr)
			}
			if !errors.Is(schemaErr, schemas.ErrInvalid) {
				t.Fatalf("JSON Schema accepted it: %v", schemaErr)
			}
			if tc.path != "" && !problemAt(typedErr, tc.path) && !problemUnder(typedErr, tc.path) {
				t.Errorf("typed parser: %v, want a problem at %s", typedErr, tc.path)
			}
			if tc.path != "" && !problemAt(schemaErr, tc.path) && !problemUnder(schemaErr, tc.path) {
				t.Errorf("JSON Schema: %v, want a problem at %s", schemaErr, tc.path)
			}
		})
	}
}

// problemUnder reports whether err has a problem at path or below it.
func problemUnder(err error, path string) bool {
	var ve *schemas.ValidationError
	if !errors.As(err, &ve) {
		return false
	}
	for _, p := range ve.Problems {
		if len(p.Path) > len(path) && p.Path[:len(path)+1] == path+"/" {
			return true
		}
	}
	return false
}

func TestDescribeJSONErrorNamesTheProblemWithoutTheInput(t *testing.T) {
	type body struct {
		Wait string `json:"wait"`
	}
	decode := func(s string, limit int64) error {
		var r io.Reader = strings.NewReader(s)
		if limit > 0 {
			r = http.MaxBytesReader(nil, io.NopCloser(r), limit)
		}
		dec := json.NewDecoder(r)
		dec.DisallowUnknownFields()
		var b body
		return dec.Decode(&b)
	}
	for in, want := range map[string]string{
		`{"wait": 5}`:     "wait must not be a JSON number",
		`{"wait": "2s",`:  "the body is empty or cut short",
		`{"wait" "2s"}`:   "malformed JSON at byte 9",
		`{"secret-x": 1}`: `unknown member "secret-x"`,
		``:                "the body is empty or cut short",
	} {
		if got := schemas.DescribeJSONError(decode(in, 0)); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	if got := schemas.DescribeJSONError(decode(`{"wait": "`+strings.Repeat("x", 100)+`"}`, 16)); got != "the body is larger than 16 bytes" {
		t.Errorf("too large: %q", got)
	}
}
