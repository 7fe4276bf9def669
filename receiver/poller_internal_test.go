package receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
)

// unavailableKeys is a key source whose JWKS cannot be fetched.
type unavailableKeys struct{}

func (unavailableKeys) Key(context.Context, string) (*keys.Key, error) {
	return nil, fmt.Errorf("%w: %w (GET jwks: 503)", keys.ErrUnknownKey, keys.ErrKeysUnavailable)
}

// TestPollerWaitsWhileSETsCannotBeTaken: while the transmitter's JWKS is down, each poll returns the same SET and
// the poller neither acknowledges nor reports it; it must back off instead of polling in a tight loop.
func TestPollerWaitsWhileSETsCannotBeTaken(t *testing.T) {
	key, err := keys.Generate(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := keys.NewSigner(key)
	claims, _ := json.Marshal(map[string]any{"iss": "https://tx.example.net", "aud": "rx", "jti": "j1", "iat": time.Now().Unix(),
		"sub_id": map[string]any{"format": "opaque", "id": "u"}, "events": map[string]any{string(schemas.EventSessionRevoked): map[string]any{}}})
	tok, err := signer.Sign(claims, keys.TypeSET)
	if err != nil {
		t.Fatal(err)
	}
	var polls atomic.Int64
	var acked, reported atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		polls.Add(1)
		var req schemas.PollRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		acked.Store(acked.Load() || len(req.Ack) > 0)
		reported.Store(reported.Load() || len(req.SetErrs) > 0)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"sets":{"j1":"` + tok + `"}}`))
	}))
	defer srv.Close()
	v, err := NewVerifier(unavailableKeys{}, "https://tx.example.net", []string{"rx"})
	if err != nil {
		t.Fatal(err)
	}
	r := New(&memInbox{seen: map[string]bool{}}, NewDispatcher())
	if err := r.Add("tx"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetVerifier("tx", v); err != nil {
		t.Fatal(err)
	}
	client := &Client{http: srv.Client(), token: StaticToken("t")}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := NewPoller(r, "tx", client, srv.URL).Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Without a backoff this is hundreds of polls; with it, the first poll, one after a second, maybe a third.
	if n := polls.Load(); n > 4 {
		t.Fatalf("%d polls in 1.5 s while the SET could not be taken", n)
	}
	if acked.Load() || reported.Load() {
		t.Fatal("a SET that could not be checked was acknowledged or reported in setErrs")
	}
}
