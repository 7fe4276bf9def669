package schemas

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzSplitObject: splitObject agrees with encoding/json decoding into map[string]json.RawMessage on every
// input, and plainString with decoding into a string whenever it takes a string.
func FuzzSplitObject(f *testing.F) {
	for _, seed := range []string{
		`{"iss":"https://tx.example.net","iat":1767225600,"aud":["a","b"],"sub_id":{"format":"email","email":"a@b"}}`,
		` { "a" : [ 1 , { "b" : "}" } ] , "c" : null , "a" : true } `,
		`{"k\u00e9y":"v","x":"tab\tquote\"","n":-1.5e3}`,
		`{}`, `{"a":}`, `{"a":1,}`, "{\"\xff\":1}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if jsonKind(data) != "object" { // decodeObject refuses anything else before splitting
			return
		}
		got, gotErr := splitObject(data, false)
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal(data, &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: splitObject err %v, encoding/json err %v", data, gotErr, wantErr)
		}
		if wantErr != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, encoding/json %d", data, len(got), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(got[k], v) {
				t.Fatalf("%q: member %q is %q, encoding/json %q", data, k, got[k], v)
			}
			var s string
			if text, ok := plainString(v); ok {
				if err := json.Unmarshal(v, &s); err != nil || s != text {
					t.Fatalf("plainString(%q) = %q, encoding/json %q %v", v, text, s, err)
				}
			}
		}
	})
}
