package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
)

// pushed is one request a test receiver got.
type pushed struct {
	auth, contentType, accept string
	body                      string
	at                        time.Time // when it arrived
}

// pushReceiver is an RFC 8935 endpoint on loopback whose answer the test controls.
type pushReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []pushed
	answer func(n int) (int, string, http.Header) // status, body, headers for the n-th request (1-based)
	change chan struct{}
}

func newPushReceiver(t *testing.T) *pushReceiver {
	r := &pushReceiver{answer: func(int) (int, string, http.Header) { return http.StatusAccepted, "", nil }, change: make(chan struct{}, 1)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, pushed{req.Header.Get("Authorization"), req.Header.Get("Content-Type"), req.Header.Get("Accept"), string(body), time.Now()})
		n, answer := len(r.got), r.answer
		r.mu.Unlock()
		status, respBody, hdr := answer(n)
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, respBody)
		select {
		case r.change <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *pushReceiver) requests() []pushed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]pushed(nil), r.got...)
}

func (r *pushReceiver) setAnswer(f func(n int) (int, string, http.Header)) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

// waitFor polls cond until it holds, failing after a deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fastRetries(c *config.Config) {
	c.PushRetryMin, c.PushRetryMax = 10*time.Millisecond, 50*time.Millisecond
}

func (h *harness) createPushStream(endpoint, auth string) *schemas.StreamConfiguration {
	h.t.Helper()
	cfg, err := h.client.CreateStream(context.Background(), receiver.StreamRequest{
		EventsRequested: []schemas.EventType{schemas.EventSessionRevoked},
		Delivery:        &schemas.Delivery{Method: schemas.DeliveryPush, EndpointURL: endpoint, AuthorizationHeader: auth},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return cfg
}

func TestOpenIDSSFTransmitterStreamVerificationPush(t *testing.T) {
	h := newHarness(t, fastRetries)
	rx := newPushReceiver(t)
	cfg := h.createPushStream(rx.URL+"/push/acme", "Bearer rx-push-7d1e")
	if cfg.Delivery.Method != schemas.DeliveryPush || cfg.Delivery.EndpointURL != rx.URL+"/push/acme" {
		t.Fatalf("delivery = %+v", cfg.Delivery)
	}
	if err := h.client.Verify(context.Background(), cfg.StreamID, "push-state"); err != nil {
		t.Fatalf("VF-02: %v", err)
	}
	waitFor(t, "the verification SET is pushed", func() bool { return len(rx.requests()) == 1 })
	got := rx.requests()[0]
	if got.auth != "Bearer rx-push-7d1e" {
		t.Fatalf("PU-04: Authorization %q", got.auth)
	}
	if got.contentType != "application/secevent+jwt" || got.accept != "application/json" {
		t.Fatalf("PU-02: Content-Type %q Accept %q", got.contentType, got.accept)
	}
	h.checkVerificationSET(cfg, got.body, "push-state")
	waitFor(t, "the delivered SET leaves the queue", func() bool {
		st, _, body := h.call(http.MethodGet, "/api/v1/streams/"+cfg.StreamID+"/dead-letters", h.token, nil)
		return st == http.StatusOK && !strings.Contains(string(body), "jti")
	})
}

func TestOpenIDSSFTransmitterStreamVerificationErrorPushNoAuth(t *testing.T) {
	h := newHarness(t, fastRetries)
	rx := newPushReceiver(t)
	cfg := h.createPushStream(rx.URL, "")
	if err := h.client.Verify(context.Background(), cfg.StreamID, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the verification SET is pushed", func() bool { return len(rx.requests()) == 1 })
	if got := rx.requests()[0].auth; got != "" {
		t.Fatalf("DLV-02: an Authorization header was sent without authorization_header: %q", got)
	}
}

// txnsOf returns the txn of every pushed SET, in arrival order.
func txnsOf(t *testing.T, reqs []pushed) []string {
	t.Helper()
	var out []string
	for _, r := range reqs {
		set, err := schemas.ParseSET(decodeClaims(t, r.body))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, set.Txn)
	}
	return out
}

func emitTxns(t *testing.T, h *harness, n int, prefix string) []string {
	t.Helper()
	var txns []string
	for i := range n {
		txn := prefix + "-" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		body := strings.Replace(revoked, `"event":`, `"txn":"`+txn+`","event":`, 1)
		if status, out := h.emit(body); status != http.StatusAccepted {
			t.Fatalf("emit: %d %s", status, out)
		}
		txns = append(txns, txn)
	}
	return txns
}

// delivered returns the txns the receiver accepted (answered 202), in order, without repeats of a txn.
func accepted(t *testing.T, rx *pushReceiver, ok func(n int) bool) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	for i, txn := range txnsOf(t, rx.requests()) {
		if ok(i+1) && !seen[txn] {
			seen[txn] = true
			out = append(out, txn)
		}
	}
	return out
}

func TestPushReceiverDownThenBackGetsEverythingInOrder(t *testing.T) {
	h := newHarness(t, fastRetries)
	rx := newPushReceiver(t)
	var mu sync.Mutex
	down := true
	okRequests := map[int]bool{}
	rx.setAnswer(func(n int) (int, string, http.Header) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusServiceUnavailable, "", nil
		}
		okRequests[n] = true
		return http.StatusAccepted, "", nil
	})
	h.createPushStream(rx.URL, "")
	want := emitTxns(t, h, 20, "down")
	waitFor(t, "the receiver refused a few retries", func() bool { return len(rx.requests()) >= 3 })
	mu.Lock()
	down = false
	mu.Unlock()
	isOK := func(n int) bool { mu.Lock(); defer mu.Unlock(); return okRequests[n] }
	waitFor(t, "everything is delivered", func() bool { return len(accepted(t, rx, isOK)) == len(want) })
	if got := accepted(t, rx, isOK); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("order per stream broken:\n got %v\nwant %v", got, want)
	}
}

func TestPushRetriesAfter429AndHonoursRetryAfter(t *testing.T) {
	h := newHarness(t, fastRetries)
	rx := newPushReceiver(t)
	rx.setAnswer(func(n int) (int, string, http.Header) {
		if n == 1 {
			return http.StatusTooManyRequests, "", http.Header{"Retry-After": []string{"0"}}
		}
		if n == 2 {
			return http.StatusInternalServerError, "", nil
		}
		return http.StatusAccepted, "", nil
	})
	h.createPushStream(rx.URL, "")
	emitTxns(t, h, 1, "retry")
	waitFor(t, "the third attempt succeeds", func() bool { return len(rx.requests()) == 3 })
	reqs := rx.requests()
	if reqs[0].body != reqs[2].body {
		t.Fatal("a retry must send the same SET")
	}
}

func TestPushPermanentErrorsBecomeDeadLetters(t *testing.T) {
	for _, code := range []schemas.ErrorCode{schemas.ErrInvalidKey, schemas.ErrInvalidAudience} {
		t.Run(string(code), func(t *testing.T) {
			h := newHarness(t, fastRetries)
			rx := newPushReceiver(t)
			rx.setAnswer(func(n int) (int, string, http.Header) {
				if n == 1 {
					return http.StatusBadRequest, `{"err":"` + string(code) + `","description":"nope"}`, http.Header{"Content-Language": []string{"en"}}
				}
				return http.StatusAccepted, "", nil
			})
			cfg := h.createPushStream(rx.URL, "")
			emitTxns(t, h, 2, "dl")
			waitFor(t, "the second SET is delivered", func() bool { return len(rx.requests()) == 2 })
			status, _, body := h.call(http.MethodGet, "/api/v1/streams/"+cfg.StreamID+"/dead-letters", h.token, nil)
			var list struct {
				DeadLetters []struct {
					JTI   string           `json:"jti"`
					Error schemas.SETError `json:"error"`
				} `json:"dead_letters"`
			}
			if err := json.Unmarshal(body, &list); err != nil || status != http.StatusOK || len(list.DeadLetters) != 1 || list.DeadLetters[0].Error.Err != code {
				t.Fatalf("dead letters: %d %s", status, body)
			}
			// Redrive: the operator fixed the problem; the SET goes out again.
			status, _, body = h.call(http.MethodPost, "/api/v1/streams/"+cfg.StreamID+"/dead-letters/redrive", h.token, `{}`)
			if status != http.StatusOK || !strings.Contains(string(body), `"redriven":1`) {
				t.Fatalf("redrive: %d %s", status, body)
			}
			waitFor(t, "the redriven SET is delivered", func() bool { return len(rx.requests()) == 3 })
			if rx.requests()[2].body != rx.requests()[0].body {
				t.Fatal("the redriven SET is the dead letter")
			}
		})
	}
}

func TestSlowPushReceiverDoesNotHoldUpOtherStreams(t *testing.T) {
	h := newHarness(t, fastRetries, func(c *config.Config) { c.PushTimeout = time.Second })
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	fast := newPushReceiver(t)
	h.createPushStream(slow.URL, "")
	h.createPushStream(fast.URL, "")
	want := emitTxns(t, h, 5, "slow")
	waitFor(t, "the fast receiver gets everything", func() bool {
		return len(accepted(t, fast, func(int) bool { return true })) == len(want)
	})
}

func TestPushRedirectIsNotFollowed(t *testing.T) {
	h := newHarness(t, fastRetries)
	target := newPushReceiver(t)
	redirector := newPushReceiver(t)
	redirector.setAnswer(func(int) (int, string, http.Header) {
		return http.StatusTemporaryRedirect, "", http.Header{"Location": []string{target.URL}}
	})
	h.createPushStream(redirector.URL, "Bearer secret")
	emitTxns(t, h, 1, "redirect")
	waitFor(t, "the transmitter retried the redirecting endpoint", func() bool { return len(redirector.requests()) >= 2 })
	if n := len(target.requests()); n != 0 {
		t.Fatalf("GO-14: the redirect was followed (%d requests, credentials leaked)", n)
	}
}

func TestSSRFTargetsAreRefusedWithoutDev(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.Dev = false
		c.Tokens = []config.Token{{Value: "strict-token", ClientID: "rx", Scopes: []string{"ssf.manage", "ssf.read"}}}
	})
	for _, target := range []string{"https://127.0.0.1/push", "https://10.0.0.1/push", "https://169.254.169.254/latest",
		"https://[::1]/push", "https://[::ffff:127.0.0.1]/push", "https://localhost/push", "http://203.0.113.9/push",
		"ftp://example.org/push"} {
		body := map[string]any{"delivery": map[string]any{"method": "urn:ietf:rfc:8935", "endpoint_url": target}}
		status, _, out := h.call(http.MethodPost, "/ssf/streams", h.token, body)
		if status != http.StatusBadRequest || !strings.Contains(string(out), "endpoint_url") {
			t.Errorf("SEC-10: %s: %d %s", target, status, out)
		}
	}
}

func decodeClaims(t *testing.T, token string) []byte {
	t.Helper()
	_, claims, err := keys.Decode(token)
	if err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestST31_PushStreamGetsStreamUpdatedBeforeAnInactivityPause(t *testing.T) {
	h := newHarness(t, fastRetries, func(c *config.Config) { c.InactivityTimeout = time.Second })
	rx := newPushReceiver(t)
	cfg := h.createPushStream(rx.URL, "")
	eventsOf := func() []string {
		var out []string
		for _, r := range rx.requests() {
			set, err := schemas.ParseSET(decodeClaims(t, r.body))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, set.Event.Type.Name()+":"+string(set.Event.Payload))
		}
		return out
	}
	waitFor(t, "the inactivity pause is announced", func() bool { return len(rx.requests()) == 1 })
	if got := eventsOf(); !strings.HasPrefix(got[0], "stream-updated:") || !strings.Contains(got[0], `"paused"`) {
		t.Fatalf("first push %v, want stream-updated paused", got)
	}
	// The announcement is queued just before the pause is stored; a SET queued in between is still deliverable.
	waitFor(t, "the pause is stored", func() bool {
		s, err := h.srv.StoredStream(cfg.StreamID)
		return err == nil && s.Status == schemas.StatusPaused
	})
	emitTxns(t, h, 1, "held") // paused: held, not pushed
	// A worker still using its copy of the stream from before the pause would push the held event now.
	time.Sleep(300 * time.Millisecond)
	if got := eventsOf(); len(got) != 1 {
		t.Fatalf("pushed while paused: %v", got)
	}
	if _, err := h.client.Status(context.Background(), cfg.StreamID); err != nil { // receiver activity resumes the stream
		t.Fatal(err)
	}
	waitFor(t, "the resume and the held event are pushed", func() bool { return len(rx.requests()) == 3 })
	got := eventsOf()
	if !strings.Contains(got[1], "session-revoked") && !strings.Contains(got[2], "session-revoked") {
		t.Fatalf("pushes %v", got)
	}
	if !strings.Contains(strings.Join(got[1:], " "), `stream-updated:{"status":"enabled"`) {
		t.Fatalf("no stream-updated enabled in %v", got)
	}
}
