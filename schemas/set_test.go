package schemas_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ssfd/ssfd/schemas"
)

// setDoc builds SET claims from a base that is valid, with members replaced (a nil value deletes one).
func setDoc(t testing.TB, changes map[string]any) []byte {
	t.Helper()
	base := map[string]any{
		"iss":    "https://tx.example.net",
		"jti":    "0b6f1c9e4d2a4e0f",
		"iat":    1767225600,
		"aud":    "https://rx.example.org",
		"sub_id": map[string]any{"format": "email", "email": "x@example.com"},
		"events": map[string]any{string(schemas.EventSessionRevoked): map[string]any{"initiating_entity": "admin"}},
	}
	for k, v := range changes {
		if v == nil {
			delete(base, k)
			continue
		}
		base[k] = v
	}
	out, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseSETRefusesWhatSSFForbids(t *testing.T) {
	cases := []struct {
		id, name string
		changes  map[string]any
		path     string
	}{
		{"SET-06", "refuses a SET with sub", map[string]any{"sub": "u-1"}, "/sub"},
		{"SET-06", "refuses a SET with exp", map[string]any{"exp": 1767229200}, "/exp"},
		{"SET-07", "refuses a SET without sub_id", map[string]any{"sub_id": nil}, "/sub_id"},
		{"SET-10", "refuses a SET with two events", map[string]any{"events": map[string]any{
			string(schemas.EventSessionRevoked): map[string]any{}, string(schemas.EventCredentialChange): map[string]any{
				"credential_type": "password", "change_type": "update"}}}, "/events"},
		{"SET-10", "refuses a SET with no event", map[string]any{"events": map[string]any{}}, "/events"},
		{"VAL-07", "refuses a SET without iat", map[string]any{"iat": nil}, "/iat"},
		{"VAL-07", "refuses a SET whose iat is a string", map[string]any{"iat": "1767225600"}, "/iat"},
		{"VAL-07", "refuses a SET without jti", map[string]any{"jti": nil}, "/jti"},
		{"VAL-07", "refuses a SET with an empty jti", map[string]any{"jti": ""}, "/jti"},
		{"VAL-07", "refuses a SET without iss", map[string]any{"iss": nil}, "/iss"},
		{"VAL-12", "refuses a jti too long to key a replay window", map[string]any{"jti": strings.Repeat("j", schemas.MaxIdentifierLength+1)}, "/jti"},
		{"VAL-12", "refuses an iss too long to key a replay window", map[string]any{"iss": "https://" + strings.Repeat("i", schemas.MaxIdentifierLength)}, "/iss"},
		{"VAL-07", "refuses a SET without events", map[string]any{"events": nil}, "/events"},
		{"VAL-06", "refuses a SET without aud", map[string]any{"aud": nil}, "/aud"},
		{"VAL-06", "refuses an aud that is a number", map[string]any{"aud": 5}, "/aud"},
		{"VAL-06", "refuses an empty aud array", map[string]any{"aud": []string{}}, "/aud"},
		{"SET-14", "refuses a txn that is an object", map[string]any{"txn": map[string]any{}}, "/txn"},
		{"VAL-09", "refuses an event whose payload breaks its definition", map[string]any{"events": map[string]any{
			string(schemas.EventSessionRevoked): map[string]any{"reason_admin": "revoked"}}},
			"/events/" + strings.ReplaceAll(string(schemas.EventSessionRevoked), "/", "~1") + "/reason_admin"},
		{"VAL-09", "refuses an event payload that is not an object", map[string]any{"events": map[string]any{
			"https://example.com/custom": "x"}}, "/events/https:~1~1example.com~1custom"},
		{"SUB-01", "refuses an invalid sub_id", map[string]any{"sub_id": map[string]any{"format": "email"}}, "/sub_id/email"},
		{"SUB-04", "refuses an unknown sub_id format", map[string]any{"sub_id": map[string]any{"format": "unknown-format"}}, "/sub_id/format"},
	}
	for _, tc := range cases {
		t.Run(tc.id+" "+tc.name, func(t *testing.T) {
			_, err := schemas.ParseSET(setDoc(t, tc.changes))
			if !errors.Is(err, schemas.ErrInvalid) || !problemAt(err, tc.path) {
				t.Fatalf("err = %v, want a problem at %q", err, tc.path)
			}
			var ve *schemas.ValidationError
			if errors.As(err, &ve) && ve.Code != schemas.ErrInvalidRequest {
				t.Fatalf("code = %s, want invalid_request", ve.Code)
			}
		})
	}
}

func TestParseSETReportsEveryProblem(t *testing.T) {
	_, err := schemas.ParseSET(setDoc(t, map[string]any{"sub": "u", "exp": 1, "jti": nil}))
	for _, path := range []string{"/sub", "/exp", "/jti"} {
		if !problemAt(err, path) {
			t.Errorf("err = %v, want a problem at %s", err, path)
		}
	}
}

func TestParseSETRefusesInputThatIsNotAnObject(t *testing.T) {
	for _, doc := range []string{``, `[]`, `"x"`, `null`, `{"iss":`, `{}`} {
		if _, err := schemas.ParseSET([]byte(doc)); !errors.Is(err, schemas.ErrInvalid) {
			t.Errorf("ParseSET(%q) err = %v, want ErrInvalid", doc, err)
		}
	}
}

func TestSET14_TxnNumberFromOlderPeersBecomesAString(t *testing.T) {
	set, err := schemas.ParseSET(setDoc(t, map[string]any{"txn": 8675309}))
	if err != nil {
		t.Fatal(err)
	}
	if set.Txn != "8675309" {
		t.Fatalf("txn = %q", set.Txn)
	}
	out, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"txn":"8675309"`) {
		t.Fatalf("txn must be emitted as a string: %s", out)
	}
}

func TestGO01_AudienceIsAStringOrAnArray(t *testing.T) {
	one, err := schemas.ParseSET(setDoc(t, map[string]any{"aud": "https://rx"}))
	if err != nil {
		t.Fatal(err)
	}
	two, err := schemas.ParseSET(setDoc(t, map[string]any{"aud": []string{"https://a", "https://b"}}))
	if err != nil {
		t.Fatal(err)
	}
	if !one.Audience.Contains("https://rx") || !two.Audience.Contains("https://b") || two.Audience.Contains("https://rx") {
		t.Fatalf("audiences: %v %v", one.Audience, two.Audience)
	}
	a, _ := json.Marshal(one.Audience)
	b, _ := json.Marshal(two.Audience)
	if string(a) != `"https://rx"` || string(b) != `["https://a","https://b"]` {
		t.Fatalf("encodings: %s %s", a, b)
	}
}

func TestSET10_AlternativeURIsOfOneEventAreOneEvent(t *testing.T) {
	doc := setDoc(t, map[string]any{
		"sub_id": map[string]any{"format": "opaque", "id": "stream-1"},
		"events": map[string]any{
			string(schemas.EventVerification):                                 map[string]any{"state": "new"},
			"https://schemas.openid.net/secevent/sse/event-type/verification": map[string]any{"state": "old"},
		}})
	set, err := schemas.ParseSET(doc)
	if err != nil {
		t.Fatal(err)
	}
	if set.Event.Type != schemas.EventVerification || string(set.Event.Payload) != `{"state":"new"}` {
		t.Fatalf("event = %s %s, want the SSF 1.0 URI and its payload", set.Event.Type, set.Event.Payload)
	}
}

func TestLegacyEventURIsAreAcceptedAndNeverEmitted(t *testing.T) {
	doc := setDoc(t, map[string]any{
		"sub_id": map[string]any{"format": "opaque", "id": "stream-1"},
		"events": map[string]any{"https://schemas.openid.net/secevent/sse/event-type/stream-updated": map[string]any{"status": "paused"}},
	})
	set, err := schemas.ParseSET(doc)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "/sse/") || !strings.Contains(string(out), string(schemas.EventStreamUpdated)) {
		t.Fatalf("legacy URI emitted: %s", out)
	}
}

func TestSET09_LegacySubjectInsideTheEventNeedsAcceptLegacy(t *testing.T) {
	doc := setDoc(t, map[string]any{"sub_id": nil, "events": map[string]any{
		string(schemas.EventAccountDisabled): map[string]any{
			"subject": map[string]any{"subject_type": "iss-sub", "iss": "https://idp", "sub": "u1"}, "reason": "hijacking"}}})
	if _, err := schemas.ParseSET(doc); !problemAt(err, "/sub_id") {
		t.Fatalf("strict err = %v, want sub_id required", err)
	}
	set, err := schemas.ParseSET(doc, schemas.AcceptLegacy())
	if err != nil {
		t.Fatal(err)
	}
	if set.Subject.String() != `{"format":"iss_sub","iss":"https://idp","sub":"u1"}` {
		t.Fatalf("subject = %s", set.Subject)
	}
}

func TestSET11_UnknownClaimsAndUnknownEventsSurviveByteForByte(t *testing.T) {
	const doc = `{"iss":"https://tx","jti":"j1","iat":1767225600,"aud":"https://rx","sub_id":{"format":"opaque","id":"o"},` +
		`"events":{"https://example.com/event-type/custom":{"z":[1,2.50,{"deep":true}],"a":"\u003cb\u003e"}},"zz_ext":{"k":[true,null]}}`
	set, err := schemas.ParseSET([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if set.Event.Type.Known() {
		t.Fatal("the custom event type is unknown")
	}
	if _, ok, err := set.Event.Decode(); ok || err != nil {
		t.Fatalf("Decode of an unknown type = %v, %v; want not ok and no error", ok, err)
	}
	out, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != doc {
		t.Fatalf("round trip changed the SET:\n got %s\nwant %s", out, doc)
	}
}

func TestSET06_MarshalRefusesForbiddenClaims(t *testing.T) {
	set, err := schemas.ParseSET(setDoc(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	set.Extra = map[string]json.RawMessage{"exp": json.RawMessage(`1`)}
	if _, err := json.Marshal(set); err == nil {
		t.Fatal("a SET with exp must not be encoded")
	}
	set.Extra = nil
	set.Event = schemas.Event{}
	if _, err := json.Marshal(set); err == nil {
		t.Fatal("a SET without an event must not be encoded")
	}
}

func TestNumericDateAcceptsFractionsAndEmitsIntegers(t *testing.T) {
	set, err := schemas.ParseSET(setDoc(t, map[string]any{"iat": 1767225600.25}))
	if err != nil {
		t.Fatal(err)
	}
	if got := set.IssuedAt.Time().UnixMilli(); got != 1767225600250 {
		t.Fatalf("iat = %d ms", got)
	}
	for _, bad := range []any{-1, "x", true, 1e300} {
		if _, err := schemas.ParseSET(setDoc(t, map[string]any{"iat": bad})); !problemAt(err, "/iat") {
			t.Errorf("iat %v: err = %v, want a problem at /iat", bad, err)
		}
	}
	// CAEP 1.0's examples give event_timestamp in milliseconds; past the year 9999 a value is read as such.
	ms, err := schemas.ParseSET(setDoc(t, map[string]any{"iat": 1615304991643}))
	if err != nil || ms.IssuedAt.Time().UnixMilli() != 1615304991643 {
		t.Fatalf("a millisecond iat: %v %v", ms, err)
	}
	whole, _ := json.Marshal(schemas.Unix(1767225600))
	if string(whole) != "1767225600" {
		t.Fatalf("whole seconds encode as %s", whole)
	}
}

func TestSETStringsAreEncodedLikeEncodingJSON(t *testing.T) {
	for _, s := range []string{"plain", `quote " and \ backslash`, "tab\tnew\nline\r", "\x00\x1f", "<html>&", "é ✓ 𝄞", "bad \xff utf8", "sep \u2028 \u2029"} {
		set, err := schemas.ParseSET(setDoc(t, map[string]any{"txn": s, "iss": s}))
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(set)
		if err != nil || !json.Valid(out) {
			t.Fatalf("%q: %s %v", s, out, err)
		}
		back, err := schemas.ParseSET(out)
		want := strings.ToValidUTF8(s, "\uFFFD")
		if err != nil || back.Txn != want || back.Issuer != want {
			t.Fatalf("%q came back as %q: %v", s, back.Txn, err)
		}
	}
}
