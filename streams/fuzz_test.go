package streams_test

import (
	"errors"
	"testing"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// FuzzStreamRequests: create, update and replace bodies from the network either build a stream that keeps the
// transmitter's rules (events_delivered ⊆ supported, a known delivery method, the issuer untouched) or fail with
// ErrInvalid; they never panic.
func FuzzStreamRequests(f *testing.F) {
	f.Add([]byte(`{"events_requested":["https://schemas.openid.net/secevent/caep/event-type/session-revoked"],"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"https://rx/push"}}`))
	f.Add([]byte(`{"description":null,"aud":"https://rx"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p := policy()
		check := func(s *streams.Stream, err error) {
			if err != nil {
				if !errors.Is(err, streams.ErrInvalid) {
					t.Fatalf("error without ErrInvalid: %v", err)
				}
				return
			}
			if s.Config.Issuer != p.Issuer || s.Config.EventsDelivered == nil {
				t.Fatalf("transmitter members changed: %+v", s.Config)
			}
			for _, d := range s.Config.EventsDelivered {
				if d != schemas.EventSessionRevoked && d != schemas.EventCredentialChange {
					t.Fatalf("delivers unsupported %s", d)
				}
			}
		}
		s, err := p.NewStream("c", schemas.Audience{"https://rx"}, body, now)
		check(s, err)
		base := create(t, `{}`)
		check(p.Update(base, body, now))
		check(p.Replace(base, body, now))
	})
}
