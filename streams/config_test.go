package streams_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

func policy() *streams.Policy {
	return &streams.Policy{
		Issuer:            "https://tx.example.net",
		EventsSupported:   []schemas.EventType{schemas.EventSessionRevoked, schemas.EventCredentialChange},
		DeliveryMethods:   []schemas.DeliveryMethod{schemas.DeliveryPoll, schemas.DeliveryPush},
		PollURL:           func(id streams.ID) string { return "https://tx.example.net/ssf/poll/" + string(id) },
		SigningAlgorithms: []string{"RS256", "ES256"},
	}
}

var now = time.Unix(1767225600, 0)

func create(t *testing.T, body string) *streams.Stream {
	t.Helper()
	s, err := policy().NewStream("client-a", schemas.Audience{"https://rx"}, []byte(body), now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCRT03_MissingDeliveryMeansPollWithATransmitterURL(t *testing.T) {
	s := create(t, `{}`)
	if s.Config.Delivery.Method != schemas.DeliveryPoll || s.Config.Delivery.EndpointURL != "https://tx.example.net/ssf/poll/"+s.Config.StreamID {
		t.Fatalf("delivery = %+v", s.Config.Delivery)
	}
	if s.Status != schemas.StatusEnabled || s.SigningAlgorithm != "RS256" {
		t.Fatalf("CRT-09: status %s alg %s", s.Status, s.SigningAlgorithm)
	}
	if _, err := streams.ParseID(s.Config.StreamID); err != nil || len(s.Config.StreamID) != 22 {
		t.Fatalf("MT-05: stream_id %q", s.Config.StreamID)
	}
}

func TestCRT04_EventsDeliveredIsSupportedIntersectRequested(t *testing.T) {
	s := create(t, `{"events_requested":["https://schemas.openid.net/secevent/caep/event-type/session-revoked","https://example.com/unknown","not a uri"]}`)
	if !slices.Equal(s.Config.EventsDelivered, []schemas.EventType{schemas.EventSessionRevoked}) {
		t.Fatalf("events_delivered = %v", s.Config.EventsDelivered)
	}
	empty := create(t, `{}`)
	if empty.Config.EventsDelivered == nil || len(empty.Config.EventsDelivered) != 0 {
		t.Fatal("events_delivered must be present and empty")
	}
}

func TestCreateRefusesBadRequests(t *testing.T) {
	cases := map[string]string{
		"a body that is not an object":            `[]`,
		"events_requested that is not an array":   `{"events_requested":"x"}`,
		"delivery that is not an object":          `{"delivery":"poll"}`,
		"CRT-05 push without endpoint_url":        `{"delivery":{"method":"urn:ietf:rfc:8935"}}`,
		"push with a relative endpoint_url":       `{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"/push"}}`,
		"an unsupported method":                   `{"delivery":{"method":"urn:ssfd:delivery:nats"}}`,
		"a signing algorithm that is not offered": `{"ssfd_signing_alg":"HS256"}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := policy().NewStream("c", schemas.Audience{"a"}, []byte(body), now); !errors.Is(err, streams.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestDLV04_LegacyPushMethodIsStoredUnderItsSSFName(t *testing.T) {
	s := create(t, `{"delivery":{"method":"https://schemas.openid.net/secevent/risc/delivery-method/push","endpoint_url":"https://rx/push","authorization_header":"Bearer x"}}`)
	if s.Config.Delivery.Method != schemas.DeliveryPush || s.Config.Delivery.AuthorizationHeader != "Bearer x" {
		t.Fatalf("delivery = %+v", s.Config.Delivery)
	}
}

func TestUPD02_PatchChangesOnlyWhatIsPresent(t *testing.T) {
	s := create(t, `{"events_requested":["https://schemas.openid.net/secevent/caep/event-type/session-revoked"],"description":"one","ssfd_signing_alg":"ES256"}`)
	next, err := policy().Update(s, []byte(`{"stream_id":"`+s.Config.StreamID+`","description":"two"}`), now)
	if err != nil {
		t.Fatal(err)
	}
	if next.Config.Description != "two" || len(next.Config.EventsDelivered) != 1 || next.SigningAlgorithm != "ES256" {
		t.Fatalf("patched = %+v alg %s", next.Config, next.SigningAlgorithm)
	}
	if s.Config.Description != "one" {
		t.Fatal("Update must not change its input")
	}
	cleared, err := policy().Update(next, []byte(`{"stream_id":"`+s.Config.StreamID+`","description":null}`), now)
	if err != nil || cleared.Config.Description != "" {
		t.Fatalf("null removes a member: %+v %v", cleared.Config, err)
	}
}

func TestRPL02_ReplaceRemovesWhatIsLeftOut(t *testing.T) {
	s := create(t, `{"events_requested":["https://schemas.openid.net/secevent/caep/event-type/session-revoked"],"description":"one","delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"https://rx/push"}}`)
	next, err := policy().Replace(s, []byte(`{"stream_id":"`+s.Config.StreamID+`"}`), now)
	if err != nil {
		t.Fatal(err)
	}
	if next.Config.Description != "" || len(next.Config.EventsDelivered) != 0 || next.Config.Delivery.Method != schemas.DeliveryPoll {
		t.Fatalf("replaced = %+v", next.Config)
	}
}

func TestUPD04_TransmitterMembersMustEqualTheirValues(t *testing.T) {
	s := create(t, `{"events_requested":["https://schemas.openid.net/secevent/caep/event-type/session-revoked"]}`)
	id := s.Config.StreamID
	ok := []string{
		`{"stream_id":"` + id + `","iss":"https://tx.example.net","aud":"https://rx"}`,
		`{"stream_id":"` + id + `","aud":["https://rx"],"events_delivered":["https://schemas.openid.net/secevent/caep/event-type/session-revoked"]}`,
		`{"stream_id":"` + id + `","events_supported":["https://schemas.openid.net/secevent/caep/event-type/credential-change","https://schemas.openid.net/secevent/caep/event-type/session-revoked"]}`,
	}
	for _, body := range ok {
		if _, err := policy().Update(s, []byte(body), now); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
	bad := []string{
		`{"stream_id":"` + id + `","iss":"https://evil"}`,
		`{"stream_id":"` + id + `","aud":"https://other"}`,
		`{"stream_id":"` + id + `","events_delivered":[]}`,
		`{"stream_id":"` + id + `","min_verification_interval":5}`,
	}
	for _, body := range bad {
		if _, err := policy().Update(s, []byte(body), now); !errors.Is(err, streams.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", body, err)
		}
	}
}

func TestCarriesFollowsDefaultSubjects(t *testing.T) {
	ada, _ := schemas.NewEmail("ada@example.com")
	bob, _ := schemas.NewEmail("bob@example.com")
	tenant, _ := schemas.NewOpaque("acme")
	adaAtAcme, _ := schemas.NewComplex(map[string]schemas.Subject{schemas.RoleUser: ada, schemas.RoleTenant: tenant})
	acme, _ := schemas.NewComplex(map[string]schemas.Subject{schemas.RoleTenant: tenant})
	excludeAda := []streams.SubjectEntry{{Subject: ada, Included: false}}
	includeAcme := []streams.SubjectEntry{{Subject: acme, Included: true}}
	cases := []struct {
		name    string
		policy  schemas.DefaultSubjects
		entries []streams.SubjectEntry
		subject schemas.Subject
		want    bool
	}{
		{"ALL carries any subject", schemas.DefaultSubjectsAll, nil, bob, true},
		{"ALL drops an excluded subject", schemas.DefaultSubjectsAll, excludeAda, ada, false},
		{"ALL drops a complex subject holding an excluded user", schemas.DefaultSubjectsAll, excludeAda, adaAtAcme, false},
		{"NONE carries nothing by default", schemas.DefaultSubjectsNone, nil, bob, false},
		{"NONE carries an included tenant's events", schemas.DefaultSubjectsNone, includeAcme, adaAtAcme, true},
		{"an exclusion wins over an inclusion", schemas.DefaultSubjectsNone, append(includeAcme, excludeAda...), adaAtAcme, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := streams.Carries(tc.policy, tc.entries, tc.subject); got != tc.want {
				t.Fatalf("Carries = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMT05_NewIDsAreRandomUnreservedAndNeverLookLikeAFlag(t *testing.T) {
	seen := map[streams.ID]bool{}
	for range 2000 {
		id := streams.NewID()
		if _, err := streams.ParseID(string(id)); err != nil || len(id) != 22 || id[0] == '-' || id[0] == '_' {
			t.Fatalf("NewID() = %q: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}
