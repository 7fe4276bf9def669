package revocation_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/receiver/revocation"
)

const revokedChallenge = `Bearer error="invalid_token", error_description="token revoked"`

func TestGuardRefusesRevokedTokens(t *testing.T) {
	f := newGuardFixture(t, nil)
	cutoff := time.Now().Add(-10 * time.Second).Truncate(time.Second)
	cases := []struct {
		name    string
		claims  func(map[string]any)
		op      func(jti string) revocation.Op
		revoked bool
	}{
		{name: "refuses a token revoked by its jti",
			op: func(jti string) revocation.Op { return revocation.Op{Kind: revocation.OpRevokeJTI, JTI: jti} }, revoked: true},
		{name: "refuses a token whose dlg.path holds a revoked node",
			claims: func(c map[string]any) { c["dlg"].(map[string]any)["path"] = []string{"s_root", "s_A_1", "s_B_1"} },
			op:     func(string) revocation.Op { return revocation.Op{Kind: revocation.OpRevokeNode, SID: "s_A_1"} }, revoked: true},
		{name: "refuses a token issued at or before a watermark on an actor deep in the act chain",
			claims: func(c map[string]any) {
				c["act"] = map[string]any{"sub": guardAgentB, "act": map[string]any{"sub": "agent-B2", "act": map[string]any{"sub": "agent-deep"}}}
				c["iat"] = cutoff.Unix()
			},
			op: func(string) revocation.Op {
				return revocation.Op{Kind: revocation.OpWatermark, Key: revocation.Key{Kind: revocation.KeyActor, Value: "agent-deep"}, At: cutoff}
			}, revoked: true},
		{name: "accepts a token issued after the watermark on that actor",
			claims: func(c map[string]any) {
				c["act"] = map[string]any{"sub": guardAgentB, "act": map[string]any{"sub": "agent-B2", "act": map[string]any{"sub": "agent-deep2"}}}
				c["iat"] = cutoff.Unix() + 1
			},
			op: func(string) revocation.Op {
				return revocation.Op{Kind: revocation.OpWatermark, Key: revocation.Key{Kind: revocation.KeyActor, Value: "agent-deep2"}, At: cutoff}
			}},
		{name: "refuses a token signed by a withdrawn key",
			op: func(string) revocation.Op {
				return revocation.Op{Kind: revocation.OpWatermark, At: time.Now().Add(time.Hour),
					Key: revocation.Key{Kind: revocation.KeySigningKey, Value: f.ring.Active().ID()}}
			}, revoked: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, jti := f.mint(t, tc.claims)
			f.call(t, http.MethodGet, "/r", "Authorization", "Bearer "+tok).seen(t)
			applyOp(t, f.index, tc.op(jti))
			a := f.call(t, http.MethodGet, "/r", "Authorization", "Bearer "+tok)
			if !tc.revoked {
				a.seen(t)
				return
			}
			if a.status != 401 || a.code(t) != "invalid_token" || a.header.Get("WWW-Authenticate") != revokedChallenge {
				t.Errorf("got %d %s %q", a.status, a.body, a.header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestGuardRevokedDPoPTokenIsChallengedWithDPoP(t *testing.T) {
	f := newGuardFixture(t, nil)
	holder, _ := keys.Generate(keys.ES256)
	tok, jti := f.boundToken(t, holder)
	applyOp(t, f.index, revocation.Op{Kind: revocation.OpRevokeJTI, JTI: jti})
	a := f.call(t, http.MethodGet, "/r", "Authorization", "DPoP "+tok,
		"DPoP", proofFor(t, holder, http.MethodGet, f.srv.URL+"/r", tok, nil))
	want := `DPoP algs="ES256 EdDSA", error="invalid_token", error_description="token revoked"`
	if a.status != 401 || a.header.Get("WWW-Authenticate") != want {
		t.Errorf("got %d %q, want 401 %q", a.status, a.header.Get("WWW-Authenticate"), want)
	}
}

func TestGuardFailsClosedUntilTheIndexIsReady(t *testing.T) {
	f := newGuardFixture(t, func(c *revocation.GuardConfig) { c.Index = revocation.NewIndex() })
	tok, _ := f.mint(t, nil)
	a := f.call(t, http.MethodGet, "/r", "Authorization", "Bearer "+tok)
	if a.status != http.StatusServiceUnavailable || a.code(t) != "temporarily_unavailable" || a.header.Get("Retry-After") == "" {
		t.Errorf("got %d %s Retry-After %q", a.status, a.body, a.header.Get("Retry-After"))
	}
}

func TestGuardDegradedMode(t *testing.T) {
	const risky = "payments.write"
	var stale atomic.Bool
	stale.Store(true)
	staleFn := func() (string, bool) { return "no heartbeat for 45s", stale.Load() }
	inactive := map[string]bool{}
	var introspectErr atomic.Bool
	var mu sync.Mutex
	introspect := func(_ context.Context, token string) (bool, error) {
		if introspectErr.Load() {
			return false, errors.New("issuer unreachable")
		}
		mu.Lock()
		defer mu.Unlock()
		return !inactive[token], nil
	}
	plain := newGuardFixture(t, func(c *revocation.GuardConfig) { c.Stale, c.HighRiskScopes = staleFn, []string{risky} })
	withIntrospection := newGuardFixture(t, func(c *revocation.GuardConfig) {
		c.Stale, c.HighRiskScopes, c.Introspect = staleFn, []string{risky}, introspect
	})
	low := func(f *guardFixture) string { tok, _ := f.mint(t, nil); return tok }
	high := func(f *guardFixture) string {
		tok, _ := f.mint(t, func(c map[string]any) { c["scope"] = "invoices.read " + risky })
		return tok
	}
	unavailable := func(t *testing.T, a answer) {
		t.Helper()
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
			t.Errorf("got %d %s Retry-After %q, want 503", a.status, a.body, a.header.Get("Retry-After"))
		}
	}
	get := func(f *guardFixture, tok string) answer {
		return f.call(t, http.MethodGet, "/r", "Authorization", "Bearer "+tok)
	}

	t.Run("without introspection a low-risk token passes, marked degraded", func(t *testing.T) {
		if !get(plain, low(plain)).seen(t).Degraded {
			t.Error("the request was not marked degraded")
		}
	})
	t.Run("without introspection a high-risk token is refused with 503", func(t *testing.T) {
		unavailable(t, get(plain, high(plain)))
	})
	t.Run("introspection refuses an inactive token", func(t *testing.T) {
		tok := low(withIntrospection)
		mu.Lock()
		inactive[tok] = true
		mu.Unlock()
		a := get(withIntrospection, tok)
		if a.status != 401 || a.header.Get("WWW-Authenticate") != revokedChallenge {
			t.Errorf("got %d %q", a.status, a.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("introspection vouches for an active high-risk token", func(t *testing.T) {
		if !get(withIntrospection, high(withIntrospection)).seen(t).Degraded {
			t.Error("the request was not marked degraded")
		}
	})
	t.Run("a failing introspection refuses a high-risk token and passes a low-risk one", func(t *testing.T) {
		introspectErr.Store(true)
		defer introspectErr.Store(false)
		unavailable(t, get(withIntrospection, high(withIntrospection)))
		if !get(withIntrospection, low(withIntrospection)).seen(t).Degraded {
			t.Error("the request was not marked degraded")
		}
	})
	t.Run("a fresh feed is not degraded and needs no introspection", func(t *testing.T) {
		stale.Store(false)
		defer stale.Store(true)
		introspectErr.Store(true)
		defer introspectErr.Store(false)
		if get(withIntrospection, high(withIntrospection)).seen(t).Degraded {
			t.Error("marked degraded with a fresh feed")
		}
	})
}

func TestGuardStreamingEndsWhenTheTokenIsRevoked(t *testing.T) {
	f := newGuardFixture(t, nil)
	causes := make(chan error, 1)
	srv := httptest.NewServer(f.guard.Streaming(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("event: ready\ndata: {}\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		causes <- context.Cause(r.Context())
	})))
	t.Cleanup(srv.Close)
	tok, _ := f.mint(t, nil)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || lines.Text() != "event: ready" {
		t.Fatalf("first line %q, %v", lines.Text(), lines.Err())
	}
	applyOp(t, f.index, revocation.Op{Kind: revocation.OpRevokeNode, SID: "s_A"})
	select {
	case cause := <-causes:
		if !errors.Is(cause, revocation.ErrRevoked) {
			t.Errorf("cause %v, want ErrRevoked", cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream's context was not cancelled after the revocation")
	}
	for lines.Scan() { // the stream ends
	}
}

func TestGuardRecheckAtACommitPoint(t *testing.T) {
	f := newGuardFixture(t, nil)
	tok, jti := f.mint(t, nil)
	results := make(chan error, 2)
	srv := httptest.NewServer(f.guard.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		results <- f.guard.Recheck(r.Context())
		if err := f.index.Apply(revocation.Op{ID: "op_recheck", Kind: revocation.OpRevokeJTI, JTI: jti, At: time.Now()}); err != nil {
			results <- err
			return
		}
		results <- f.guard.Recheck(r.Context())
	})))
	t.Cleanup(srv.Close)
	fx := &guardFixture{srv: srv}
	fx.call(t, http.MethodGet, "/pay", "Authorization", "Bearer "+tok)
	if err := <-results; err != nil {
		t.Errorf("before the revocation: %v", err)
	}
	var d *revocation.Denial
	if err := <-results; !errors.As(err, &d) || d.Description != revocation.DescriptionRevoked {
		t.Errorf("after the revocation: %v", err)
	}
	if err := f.guard.Recheck(t.Context()); err == nil {
		t.Error("a context without a token passed Recheck")
	}
}

// TestGuardRefusesEveryRequestStartedAfterTheRevocation: 8 goroutines call a protected handler with one token
// while the revocation op is applied; a request whose sending started after Apply returned must be refused
// (spec/agent-auth.md §3.5: the residual window is the op's propagation, not the guard).
func TestGuardRefusesEveryRequestStartedAfterTheRevocation(t *testing.T) {
	f := newGuardFixture(t, nil)
	tok, jti := f.mint(t, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	t.Cleanup(client.CloseIdleConnections)
	const workers, maxRequests, afterRevocation = 8, 2000, 25
	var applied atomic.Bool // set once Apply returned
	var accepted, startedAfter, violations atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			after := 0
			for range maxRequests {
				late := applied.Load() // read before the request is sent
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/r", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					accepted.Add(1)
				}
				if late {
					startedAfter.Add(1)
					if resp.StatusCode != http.StatusUnauthorized {
						violations.Add(1)
					}
					if after++; after == afterRevocation {
						return
					}
				}
			}
		})
	}
	for deadline := time.Now().Add(30 * time.Second); accepted.Load() < workers && !t.Failed(); { // requests flow before the op
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d workers had a request accepted", accepted.Load(), workers)
		}
		time.Sleep(time.Millisecond)
	}
	applyOp(t, f.index, revocation.Op{Kind: revocation.OpRevokeJTI, JTI: jti})
	applied.Store(true)
	wg.Wait()
	if n := violations.Load(); n > 0 {
		t.Errorf("%d requests started after the revocation were accepted", n)
	}
	if startedAfter.Load() < workers*afterRevocation {
		t.Errorf("only %d requests started after the revocation", startedAfter.Load())
	}
	if !strings.Contains(f.call(t, http.MethodGet, "/r", "Authorization", "Bearer "+tok).body, "invalid_token") {
		t.Error("the token still passes")
	}
}
