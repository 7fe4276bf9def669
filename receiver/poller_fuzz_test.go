package receiver

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
)

// FuzzPollResponse: a poll response from a transmitter is decoded and its SETs received; the poller
// acknowledges only SETs it stored under their own jti, reports every other SET of the response in setErrs, and
// never acknowledges or reports a jti the response did not carry.
func FuzzPollResponse(f *testing.F) {
	const iss, aud = "https://tx.example.net", "https://rx.example.org"
	key, err := keys.Generate(keys.ES256)
	if err != nil {
		f.Fatal(err)
	}
	signer, err := keys.NewSigner(key)
	if err != nil {
		f.Fatal(err)
	}
	sign := func(jti string) string {
		claims, _ := json.Marshal(map[string]any{"iss": iss, "aud": aud, "jti": jti, "iat": time.Now().Unix(),
			"sub_id": map[string]any{"format": "opaque", "id": "u1"},
			"events": map[string]any{string(schemas.EventSessionRevoked): map[string]any{}}})
		tok, err := signer.Sign(claims, keys.TypeSET)
		if err != nil {
			f.Fatal(err)
		}
		return tok
	}
	resp := func(sets map[string]string, more bool) []byte {
		out, _ := json.Marshal(map[string]any{"sets": sets, "moreAvailable": more})
		return out
	}
	f.Add(resp(map[string]string{"a": sign("a"), "b": sign("b")}, true))
	f.Add(resp(map[string]string{"a": sign("b")}, false)) // delivered under another SET's jti
	f.Add(resp(map[string]string{"x": "not.a.jws"}, false))
	f.Add([]byte(`{"sets":{}}`))
	f.Add([]byte(`{"sets":null,"moreAvailable":"yes"}`))
	v, err := NewVerifier(keys.StaticKeys(keys.NewJWKS(key)), iss, []string{aud})
	if err != nil {
		f.Fatal(err)
	}
	r := New(&memInbox{seen: map[string]bool{}}, NewDispatcher(), WithReplayWindow(time.Hour))
	if err := r.Add("tx"); err != nil {
		f.Fatal(err)
	}
	if err := r.SetVerifier("tx", v); err != nil {
		f.Fatal(err)
	}
	p := NewPoller(r, "tx", nil, "")
	f.Fuzz(func(t *testing.T, data []byte) {
		parsed, err := schemas.ParsePollResponse(data)
		if err != nil {
			return
		}
		acks, errs, later := p.receive(context.Background(), parsed)
		for _, jti := range acks {
			raw, ok := parsed.Sets[jti]
			if !ok {
				t.Fatalf("acknowledged %q, which the response did not carry", jti)
			}
			set, err := v.Verify(context.Background(), raw)
			if err != nil || set.ID != jti {
				t.Fatalf("acknowledged %q, a SET that is not valid under that jti: %v", jti, err)
			}
			if _, both := errs[jti]; both {
				t.Fatalf("%q both acknowledged and reported", jti)
			}
		}
		for jti, e := range errs {
			if _, ok := parsed.Sets[jti]; !ok || e.Err == "" {
				t.Fatalf("reported %q (%+v), which the response did not carry", jti, e)
			}
		}
		if len(acks)+len(errs)+later != len(parsed.Sets) || later != 0 {
			t.Fatalf("%d SETs, %d acknowledged, %d reported, %d for later (the keys and the store are here)",
				len(parsed.Sets), len(acks), len(errs), later)
		}
	})
}

// memInbox is an Inbox in memory: this package's tests cannot import storage/bolt, which imports this package.
// The bolt inbox itself is tested by storage/storetest.
type memInbox struct {
	mu      sync.Mutex
	seen    map[string]bool
	waiting []Entry
	seq     uint64
}

func (m *memInbox) Accept(_ context.Context, e Entry, _ time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[e.Issuer+" "+e.JTI] {
		return false, nil
	}
	m.seen[e.Issuer+" "+e.JTI] = true
	m.seq++
	e.Seq = m.seq
	m.waiting = append(m.waiting, e)
	return true, nil
}

func (m *memInbox) Waiting(_ context.Context, after uint64, max int) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Entry
	for _, e := range m.waiting {
		if e.Seq > after && len(out) < max {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memInbox) Len(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.waiting), nil
}

func (m *memInbox) Handled(context.Context, []uint64) error        { return nil }
func (m *memInbox) Forget(context.Context, time.Time) (int, error) { return 0, nil }
