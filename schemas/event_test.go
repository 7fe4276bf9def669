package schemas_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ssfd/ssfd/schemas"
)

func TestCAEPEventPayloadsAreCheckedExactly(t *testing.T) {
	cases := []struct {
		id, name string
		typ      schemas.EventType
		payload  string
		path     string // "" means valid
	}{
		{"CA-01", "refuses reason_admin as a string", schemas.EventSessionRevoked, `{"reason_admin":"revoked"}`, "/reason_admin"},
		{"CA-01", "refuses an empty reason_admin", schemas.EventSessionRevoked, `{"reason_admin":{}}`, "/reason_admin"},
		{"CA-01", "refuses an empty reason text", schemas.EventSessionRevoked, `{"reason_user":{"en":""}}`, "/reason_user/en"},
		{"CA-01", "refuses a language tag that is not BCP 47", schemas.EventSessionRevoked, `{"reason_user":{"english language":"x"}}`, "/reason_user/english language"},
		{"CA-01", "accepts a language map", schemas.EventSessionRevoked, `{"reason_admin":{"en":"Revoked","de":"Widerrufen"}}`, ""},
		{"CA-10", "refuses initiating_entity in the wrong case", schemas.EventSessionRevoked, `{"initiating_entity":"Admin"}`, "/initiating_entity"},
		{"CA-10", "refuses event_timestamp as a string", schemas.EventSessionRevoked, `{"event_timestamp":"1767225600"}`, "/event_timestamp"},
		{"CA-10", "refuses credential_type in the wrong case", schemas.EventCredentialChange, `{"credential_type":"Password","change_type":"update"}`, "/credential_type"},
		{"CA-10", "accepts an agreed lowercase credential_type", schemas.EventCredentialChange, `{"credential_type":"passkey","change_type":"update"}`, ""},
		{"CA-10", "refuses change_type in the wrong case", schemas.EventCredentialChange, `{"credential_type":"password","change_type":"Update"}`, "/change_type"},
		{"CA-10", "refuses credential-change without change_type", schemas.EventCredentialChange, `{"credential_type":"password"}`, "/change_type"},
		{"CA-10", "refuses credential-change without credential_type", schemas.EventCredentialChange, `{"change_type":"create"}`, "/credential_type"},
		{"CA-10", "refuses token-claims-change without claims", schemas.EventTokenClaimsChange, `{}`, "/claims"},
		{"CA-10", "refuses token-claims-change with empty claims", schemas.EventTokenClaimsChange, `{"claims":{}}`, "/claims"},
		{"CA-10", "refuses an unknown assurance namespace", schemas.EventAssuranceLevelChange, `{"namespace":"rfc8176","current_level":"mfa"}`, "/namespace"},
		{"CA-10", "refuses assurance-level-change without current_level", schemas.EventAssuranceLevelChange, `{"namespace":"RFC8176"}`, "/current_level"},
		{"CA-10", "refuses change_direction up", schemas.EventAssuranceLevelChange, `{"namespace":"RFC8176","current_level":"mfa","change_direction":"up"}`, "/change_direction"},
		{"CA-10", "refuses compliance status in the wrong case", schemas.EventDeviceComplianceChange, `{"previous_status":"compliant","current_status":"Compliant"}`, "/current_status"},
		{"CA-10", "refuses device-compliance-change without previous_status", schemas.EventDeviceComplianceChange, `{"current_status":"compliant"}`, "/previous_status"},
		{"CA-10", "refuses a risk level in lower case", schemas.EventRiskLevelChange, `{"principal":"USER","current_level":"high"}`, "/current_level"},
		{"CA-10", "refuses a lower-case principal", schemas.EventRiskLevelChange, `{"principal":"user","current_level":"HIGH"}`, "/principal"},
		{"CA-10", "accepts another upper-case principal", schemas.EventRiskLevelChange, `{"principal":"AGENT","current_level":"HIGH"}`, ""},
		{"CA-10", "refuses amr that is not an array", schemas.EventSessionEstablished, `{"amr":"pwd"}`, "/amr"},
		{"CA-12", "ignores the removed ips claim", schemas.EventSessionPresented, `{"ips":["192.0.2.1"]}`, ""},
		{"SET-11", "ignores unknown members", schemas.EventSessionRevoked, `{"x-vendor":{"a":1}}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.id+" "+tc.name, func(t *testing.T) {
			_, err := schemas.DecodePayload(tc.typ, []byte(tc.payload))
			if tc.path == "" {
				if err != nil {
					t.Fatalf("err = %v, want valid", err)
				}
				return
			}
			if !errors.Is(err, schemas.ErrInvalid) || !problemAt(err, tc.path) {
				t.Fatalf("err = %v, want a problem at %q", err, tc.path)
			}
		})
	}
}

func TestRISCEventPayloads(t *testing.T) {
	cases := []struct {
		name    string
		typ     schemas.EventType
		payload string
		path    string
	}{
		{"accepts account-disabled for hijacking", schemas.EventAccountDisabled, `{"reason":"hijacking"}`, ""},
		{"refuses an unknown disable reason", schemas.EventAccountDisabled, `{"reason":"Hijacking"}`, "/reason"},
		{"reads the hyphenated new-value", schemas.EventIdentifierChanged, `{"new-value":"new@example.com"}`, ""},
		{"refuses credential-compromise without credential_type", schemas.EventCredentialCompromise, `{}`, "/credential_type"},
		{"refuses credential-compromise with reason_admin as a string", schemas.EventCredentialCompromise, `{"credential_type":"password","reason_admin":"x"}`, "/reason_admin"},
		{"accepts attribute-less events with {}", schemas.EventOptOutEffective, `{}`, ""},
		{"refuses a payload that is not an object", schemas.EventAccountPurged, `[]`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := schemas.DecodePayload(tc.typ, []byte(tc.payload))
			if tc.path == "" && tc.payload != "[]" {
				if err != nil {
					t.Fatal(err)
				}
				if p.EventType() != tc.typ {
					t.Fatalf("EventType = %s", p.EventType())
				}
				return
			}
			if !errors.Is(err, schemas.ErrInvalid) || !problemAt(err, tc.path) {
				t.Fatalf("err = %v, want a problem at %q", err, tc.path)
			}
		})
	}
	p, err := schemas.DecodePayload(schemas.EventIdentifierChanged, []byte(`{"new-value":"new@example.com"}`))
	if err != nil || p.(*schemas.IdentifierChanged).NewValue != "new@example.com" {
		t.Fatalf("new-value not read: %v %v", p, err)
	}
}

func TestSSFEventPayloads(t *testing.T) {
	if _, err := schemas.DecodePayload(schemas.EventStreamUpdated, []byte(`{}`)); !problemAt(err, "/status") {
		t.Fatalf("stream-updated without status: %v", err)
	}
	if _, err := schemas.DecodePayload(schemas.EventStreamUpdated, []byte(`{"status":"Paused"}`)); !problemAt(err, "/status") {
		t.Fatalf("stream-updated with Paused: %v", err)
	}
	p, err := schemas.DecodePayload(schemas.EventVerification, []byte(`{"state":"abc"}`))
	if err != nil || p.(*schemas.Verification).State != "abc" {
		t.Fatalf("verification: %v %v", p, err)
	}
	if _, err := schemas.ParseStreamStatus("ENABLED"); !errors.Is(err, schemas.ErrInvalid) {
		t.Fatalf("ParseStreamStatus(ENABLED) err = %v (ST-02)", err)
	}
}

func TestNewEventValidatesAndEncodes(t *testing.T) {
	ev, err := schemas.NewEvent(&schemas.CredentialChange{
		CredentialType: schemas.CredentialPassword, ChangeType: schemas.ChangeUpdate,
		CAEPCommon: schemas.CAEPCommon{EventTimestamp: schemas.Unix(1767225000), InitiatingEntity: schemas.InitiatedByUser,
			ReasonAdmin: schemas.LangMap{"en": "Self-service reset"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"credential_type":"password","change_type":"update","event_timestamp":1767225000,"initiating_entity":"user","reason_admin":{"en":"Self-service reset"}}`
	if ev.Type != schemas.EventCredentialChange || string(ev.Payload) != want {
		t.Fatalf("event = %s %s", ev.Type, ev.Payload)
	}
	if _, err := schemas.NewEvent(&schemas.CredentialChange{}); !errors.Is(err, schemas.ErrInvalid) {
		t.Fatalf("NewEvent of an empty credential-change err = %v", err)
	}
}

func TestEventTypes(t *testing.T) {
	if got := len(schemas.KnownEventTypes()); got != 24 {
		t.Fatalf("known event types = %d, want 8 CAEP + 14 RISC + 2 SSF", got)
	}
	names := map[string]bool{}
	for _, et := range schemas.KnownEventTypes() {
		if names[et.Name()] {
			t.Fatalf("duplicate short name %s", et.Name())
		}
		names[et.Name()] = true
		if schemas.SchemaFile(et) == "" {
			t.Fatalf("%s has no schema file", et)
		}
	}
	if schemas.EventSessionRevoked.Name() != "session-revoked" {
		t.Fatal(schemas.EventSessionRevoked.Name())
	}
	if schemas.EventType("urn:example:a.b").Name() != "urn_example_a_b" {
		t.Fatal(schemas.EventType("urn:example:a.b").Name())
	}
	legacy, err := schemas.ParseEventType("https://schemas.openid.net/secevent/caep/event-type/token-claims-changed")
	if err != nil || legacy != schemas.EventTokenClaimsChange {
		t.Fatalf("legacy token-claims-changed = %s %v", legacy, err)
	}
	for _, bad := range []string{"", "session-revoked", "not a uri"} {
		if _, err := schemas.ParseEventType(bad); !errors.Is(err, schemas.ErrInvalid) {
			t.Errorf("ParseEventType(%q) err = %v", bad, err)
		}
	}
	var raw json.RawMessage = []byte(`{}`)
	if _, err := schemas.DecodePayload("https://example.com/unknown", raw); !errors.Is(err, schemas.ErrInvalid) {
		t.Fatal("DecodePayload of an unknown type must fail")
	}
}

func TestMemberNamesAreExact(t *testing.T) {
	if _, err := schemas.DecodePayload(schemas.EventCredentialChange,
		[]byte(`{"Credential_Type":"password","change_type":"create"}`)); !problemAt(err, "/credential_type") {
		t.Fatalf("a member in the wrong case must not count as credential_type: %v", err)
	}
	if _, err := schemas.DecodePayload(schemas.EventSessionEstablished, []byte(`{"amr":null}`)); !problemAt(err, "/amr") {
		t.Fatalf("null for a defined member must be refused: %v", err)
	}
	if _, err := schemas.DecodePayload(schemas.EventSessionEstablished, []byte(`{"x-null":null}`)); err != nil {
		t.Fatalf("null for an unknown member is ignored: %v", err)
	}
}
