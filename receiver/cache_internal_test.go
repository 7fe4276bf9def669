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

// cached counts the SETs the receiver keeps parsed for Run.
func (r *Receiver) cached() int {
	n := 0
	r.pending.Range(func(any, any) bool { n++; return true })
	return n
}

// TestAcceptedSETsAreCachedOnlyWhereTheyAreDrained: by default an accepted SET stays parsed in memory until Run
// handled it; WithoutParsedCache keeps nothing (a replica that accepts SETs another replica drains would keep
// them for ever), and Run hands the SET, parsed from the stored claims, to the handlers all the same.
func TestAcceptedSETsAreCachedOnlyWhereTheyAreDrained(t *testing.T) {
	key, err := keys.Generate(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := keys.NewSigner(key)
	v, err := NewVerifier(keys.StaticKeys(keys.NewJWKS(key)), "https://tx.example.net", []string{"rx"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts []Option
		kept int
	}{
		{"keeps an accepted SET parsed until Run handled it", nil, 1},
		{"keeps nothing without the parsed cache, and Run parses the stored claims", []Option{WithoutParsedCache()}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []Delivery
			d := NewDispatcher()
			d.HandleAll(func(_ context.Context, dl Delivery) error {
				mu.Lock()
				got = append(got, dl)
				mu.Unlock()
				return nil
			})
			r := New(&memInbox{seen: map[string]bool{}}, d, tc.opts...)
			if err := r.Add("tx"); err != nil {
				t.Fatal(err)
			}
			if err := r.SetVerifier("tx", v); err != nil {
				t.Fatal(err)
			}
			claims, _ := json.Marshal(map[string]any{"iss": "https://tx.example.net", "aud": "rx", "jti": "j1",
				"iat": time.Now().Unix(), "sub_id": map[string]any{"format": "opaque", "id": "u"},
				"events": map[string]any{string(schemas.EventSessionRevoked): map[string]any{"initiating_entity": "admin"}}})
			tok, err := signer.Sign(claims, keys.TypeSET)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Receive(context.Background(), "tx", tok); err != nil {
				t.Fatal(err)
			}
			if n := r.cached(); n != tc.kept {
				t.Fatalf("%d SETs kept parsed after Receive, want %d", n, tc.kept)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = r.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				n := len(got)
				mu.Unlock()
				if n > 0 && r.cached() == 0 { // Run drops its parsed copy right after the handlers took it
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Run handed %d SETs to the handlers and keeps %d parsed, want 1 and 0", n, r.cached())
				}
				time.Sleep(10 * time.Millisecond)
			}
			mu.Lock()
			dl := got[0]
			mu.Unlock()
			if dl.Registration != "tx" || dl.SET.ID != "j1" || dl.SET.Event.Type != schemas.EventSessionRevoked {
				t.Fatalf("the handlers got %+v", dl)
			}
		})
	}
}
