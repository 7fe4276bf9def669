package schemas_test

import (
	"testing"

	"github.com/ssfd/ssfd/schemas"
)

// benchSET is a typical SET payload: an email subject and a session-revoked event with the common claims.
var benchSET = []byte(`{"iss":"https://ssf.tx.example.net/tenants/acme","jti":"0b6f1c9e4d2a4e0f9a7b3c1d2e3f4a5b","iat":1767225600,` +
	`"aud":"https://rx.example.org/ssf","txn":"c7d1-incident-4411","sub_id":{"format":"email","email":"ada@example.com"},` +
	`"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{"event_timestamp":1767225590,` +
	`"initiating_entity":"admin","reason_admin":{"en":"Revoked from the admin console"}}}}`)

// BenchmarkParseSET: decoding and validating the claims of one SET, as every receiver does after the signature.
func BenchmarkParseSET(b *testing.B) {
	for b.Loop() {
		if _, err := schemas.ParseSET(benchSET); err != nil {
			b.Fatal(err)
		}
	}
}
