package transmitter_test

import (
	"testing"

	"github.com/ssfd/ssfd/transmitter"
)

// FuzzParseEvents: intake bodies from the network parse to valid events or fail with a 400 protocol error; they
// never panic and never yield an event without a subject.
func FuzzParseEvents(f *testing.F) {
	f.Add([]byte(`{"event_type":"https://schemas.openid.net/secevent/caep/event-type/session-revoked","subject":{"format":"email","email":"a@b"},"event":{"reason_admin":{"en":"x"}}}`))
	f.Add([]byte(`[{"event_type":"x"},{}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := transmitter.ParseEvents(body)
		if err != nil {
			pe, ok := err.(*transmitter.Error) //nolint:errorlint // ParseEvents returns *Error itself
			if !ok || pe.Status != 400 {
				t.Fatalf("error %T %v, want a 400 *transmitter.Error", err, err)
			}
			return
		}
		for _, ev := range events {
			if ev.Subject.IsZero() || ev.Event.Type == "" {
				t.Fatalf("an accepted event lacks a subject or type: %+v", ev)
			}
		}
	})
}
