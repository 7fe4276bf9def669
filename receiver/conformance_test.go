package receiver_test

// Go tests mirroring the receiver modules of the OpenID SSF conformance suite (spec/ssf.md §17.3), each named
// after the module's testName, run against the independent transmitter of emulator_test.go.

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
)

const verificationType = "https://schemas.openid.net/secevent/ssf/event-type/verification"

// harness is a receiver (bolt inbox in a temporary directory, push endpoint on loopback) kept by a Keeper
// against an emulator.
type harness struct {
	emu *emulator
	rcv *receiver.Receiver

	mu      sync.Mutex
	handled map[string]int // jti → times handled
	typed   []*schemas.SessionRevoked
}

func newHarness(t *testing.T, delivery schemas.DeliveryMethod, setUp func(*emulator)) *harness {
	t.Helper()
	h := &harness{emu: newEmulator(t), handled: map[string]int{}}
	if setUp != nil {
		setUp(h.emu)
	}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "rx.db"))
	if err != nil {
		t.Fatal(err)
	}
	d := receiver.NewDispatcher()
	d.HandleAll(func(_ context.Context, dl receiver.Delivery) error {
		h.mu.Lock()
		h.handled[dl.SET.ID]++
		h.mu.Unlock()
		return nil
	})
	receiver.On(d, func(_ context.Context, _ receiver.Delivery, e *schemas.SessionRevoked) error {
		h.mu.Lock()
		h.typed = append(h.typed, e)
		h.mu.Unlock()
		return nil
	})
	h.rcv = receiver.New(db, d)
	e := echo.New()
	h.rcv.RegisterPush(e)
	srv := httptest.NewServer(e)
	k, err := receiver.NewKeeper(h.rcv, receiver.Registration{Name: "emu", Issuer: h.emu.issuer(),
		Token: receiver.StaticToken(emuToken), Delivery: delivery, PushURL: srv.URL + receiver.PushPath + "emu",
		PushAuthorization: "Bearer push-secret", VerifyInterval: -1, CheckInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = h.rcv.Run(ctx) })
	wg.Go(func() { _ = k.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		srv.Close()
		_ = db.Close()
	})
	return h
}

func (h *harness) handledCount(jti string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.handled[jti]
}

// waitHandled waits (bounded) until jti was handled.
func (h *harness) waitHandled(t *testing.T, jti string) {
	t.Helper()
	for range 500 {
		if h.handledCount(jti) > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("SET %s was never handled", jti)
}

// verified waits for the solicited verification the keeper asks for at start and checks how it was answered.
func (h *harness) verified(t *testing.T, want string) {
	t.Helper()
	var sets []signed
	for range 500 {
		if sets = h.emu.sentOf(verificationType); len(sets) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(sets) == 0 {
		t.Fatal("the receiver never asked for verification")
	}
	if got := h.emu.waitOutcome(sets[0].jti); got != want {
		t.Fatalf("the verification event was answered %q, want %q", got, want)
	}
	st := h.rcv.Statuses()[0]
	if st.LastVerification.IsZero() || st.StreamID != h.emu.streamID() {
		t.Fatalf("status after verification: %+v", st)
	}
}

func expected(delivery schemas.DeliveryMethod) string {
	if delivery == schemas.DeliveryPush {
		return "202"
	}
	return "ack"
}

var deliveries = map[string]schemas.DeliveryMethod{"push": schemas.DeliveryPush, "poll": schemas.DeliveryPoll}

func TestConformance_openid_ssf_receiver_happypath(t *testing.T) {
	emu := newEmulator(t)
	ctx := context.Background()
	c, err := receiver.Discover(ctx, emu.issuer(), receiver.WithToken(emuToken))
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateStream(ctx, receiver.StreamRequest{EventsRequested: []schemas.EventType{schemas.EventSessionRevoked},
		Delivery: &schemas.Delivery{Method: schemas.DeliveryPoll}, Description: "happy path"})
	if err != nil {
		t.Fatal(err)
	}
	if created.Delivery.EndpointURL != emu.issuer()+"/poll?stream_id="+created.StreamID {
		t.Fatalf("created: %+v", created)
	}
	if got, err := c.GetStream(ctx, created.StreamID); err != nil || got.StreamID != created.StreamID {
		t.Fatalf("read: %+v %v", got, err)
	}
	if got, err := c.UpdateStream(ctx, created.StreamID, map[string]any{"description": "patched"}); err != nil || got.Description != "patched" {
		t.Fatalf("update: %+v %v", got, err)
	}
	if got, err := c.ReplaceStream(ctx, created.StreamID, receiver.StreamRequest{Delivery: &schemas.Delivery{Method: schemas.DeliveryPoll}}); err != nil || got.Description != "" {
		t.Fatalf("replace: %+v %v", got, err)
	}
	if err := c.DeleteStream(ctx, created.StreamID); err != nil {
		t.Fatal(err)
	}
	if emu.streamID() != "" {
		t.Fatal("the stream was not deleted")
	}
	if len(emu.bodies) != 3 {
		t.Fatalf("create, update and replace sent %d bodies", len(emu.bodies))
	}
}

func TestConformance_openid_ssf_receiver_stream_create_delete(t *testing.T) {
	emu := newEmulator(t)
	ctx := context.Background()
	c, err := receiver.Discover(ctx, emu.issuer(), receiver.WithToken(emuToken))
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateStream(ctx, receiver.StreamRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStream(ctx, receiver.StreamRequest{}); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("a second create on a one-stream transmitter: %v", err)
	}
	if err := c.DeleteStream(ctx, created.StreamID); err != nil || emu.streamID() != "" {
		t.Fatalf("delete: %v", err)
	}
	if err := c.DeleteStream(ctx, created.StreamID); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("deleting an unknown stream: %v", err)
	}
}

func TestConformance_openid_ssf_receiver_stream_status_update(t *testing.T) {
	emu := newEmulator(t)
	ctx := context.Background()
	c, _ := receiver.Discover(ctx, emu.issuer(), receiver.WithToken(emuToken))
	created, err := c.CreateStream(ctx, receiver.StreamRequest{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.SetStatus(ctx, created.StreamID, schemas.StatusPaused, "maintenance")
	if err != nil || st.Status != schemas.StatusPaused {
		t.Fatalf("status update: %+v %v", st, err)
	}
	if got, err := c.Status(ctx, created.StreamID); err != nil || got.Status != schemas.StatusPaused {
		t.Fatalf("status read: %+v %v", got, err)
	}
	if err := c.DeleteStream(ctx, created.StreamID); err != nil {
		t.Fatal(err)
	}
}

func TestConformance_openid_ssf_receiver_stream_verification(t *testing.T) {
	for name, method := range deliveries {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, method, nil)
			h.verified(t, expected(method))
		})
	}
}

func TestConformance_openid_ssf_receiver_unsolicited_stream_verification(t *testing.T) {
	for name, method := range deliveries {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, method, func(e *emulator) { e.unsolicited = true })
			var first signed
			for range 500 {
				if sets := h.emu.sentOf(verificationType); len(sets) > 0 {
					first = sets[0]
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if first.jti == "" {
				t.Fatal("the emulator sent no verification")
			}
			if got := h.emu.waitOutcome(first.jti); got != expected(method) {
				t.Fatalf("the unsolicited verification was answered %q", got)
			}
			h.waitHandled(t, first.jti)
			for range 500 {
				if !h.rcv.Statuses()[0].LastUnsolicitedVerification.IsZero() {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Fatal("the status does not show the unsolicited verification")
		})
	}
}

func TestConformance_openid_ssf_receiver_stream_supported_events(t *testing.T) {
	for name, method := range deliveries {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, method, nil)
			h.verified(t, expected(method))
			subject := map[string]any{"format": "email", "email": "ada@example.com"}
			var sent []signed
			for _, typ := range supportedEvents {
				s := h.emu.setFor(typ, caepExamples[typ], subject)
				h.emu.send(s)
				sent = append(sent, s)
			}
			for _, s := range sent {
				if got := h.emu.waitOutcome(s.jti); got != expected(method) {
					t.Errorf("%s was answered %q", s.typ, got)
				}
				h.waitHandled(t, s.jti)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if len(h.typed) != 1 || h.typed[0].InitiatingEntity != "policy" {
				t.Fatalf("the typed session-revoked handler saw %+v", h.typed)
			}
		})
	}
}

// TestVAL_InvalidSETsAreRefusedWithTheirCode sends every invalid SET of §17.3 over push and poll and checks the
// RFC 8935 code in the 400 answer or in setErrs, and that none of them was handled.
func TestVAL_InvalidSETsAreRefusedWithTheirCode(t *testing.T) {
	for name, method := range deliveries {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, method, nil)
			h.verified(t, expected(method))
			e := h.emu
			subject := map[string]any{"format": "email", "email": "ada@example.com"}
			base := func() map[string]any { return e.claims(supportedEvents[0], map[string]any{}, subject) }
			with := func(k string, v any) map[string]any { c := base(); c[k] = v; return c }
			pub, _ := x509.MarshalPKIXPublicKey(&e.key.PublicKey)
			cases := []struct {
				name, want string
				set        signed
			}{
				{"bad signature (VAL-04)", "authentication_failed", tamper(e.sign(nil, base()))},
				{"wrong iss (VAL-05)", "invalid_issuer", e.sign(nil, with("iss", "https://evil.example.com"))},
				{"wrong aud (VAL-06)", "invalid_audience", e.sign(nil, with("aud", "https://someone-else.example"))},
				{"unknown kid (VAL-03)", "invalid_key", e.sign(map[string]any{"kid": "no-such-key"}, base())},
				{"alg none (VAL-03)", "invalid_key", unsigned(base())},
				{"HS256 with the public key (VAL-03)", "invalid_key", hs256(map[string]any{"alg": "HS256", "typ": "secevent+jwt", "kid": e.kid}, base(), pub)},
				{"wrong typ (VAL-02)", "invalid_request", e.sign(map[string]any{"typ": "JWT"}, base())},
				{"two events (SET-07)", "invalid_request", e.sign(nil, with("events", map[string]any{
					supportedEvents[0]: map[string]any{}, supportedEvents[4]: caepExamples[supportedEvents[4]]}))},
				{"sub present (VAL-07)", "invalid_request", e.sign(nil, with("sub", "ada"))},
				{"iat in the future (VAL-07)", "invalid_request", e.sign(nil, with("iat", time.Now().Add(time.Hour).Unix()))},
				{"invalid payload (VAL-09)", "invalid_request", e.sign(nil, with("events", map[string]any{
					supportedEvents[4]: map[string]any{"previous_status": "fine", "current_status": "compliant", "event_timestamp": 1}}))},
				{"a state nobody asked for (VAL-11)", "invalid_state", e.sign(nil, e.claims(verificationType,
					map[string]any{"state": "nobody-asked-for-this"}, e.streamSubject(e.streamID())))},
			}
			for _, c := range cases {
				e.send(c.set)
			}
			for _, c := range cases {
				want := c.want
				if method == schemas.DeliveryPush {
					want = "400 " + want
				}
				if got := e.waitOutcome(c.set.jti); got != want {
					t.Errorf("%s: answered %q, want %q", c.name, got, want)
				}
				if n := h.handledCount(c.set.jti); n != 0 {
					t.Errorf("%s: handled %d times", c.name, n)
				}
			}
		})
	}
}

// TestVAL12_ReplayIsAcknowledgedButHandledOnce sends one SET twice: both deliveries are acknowledged as a first
// one would be (202 or ack), and the SET is handled once.
func TestVAL12_ReplayIsAcknowledgedButHandledOnce(t *testing.T) {
	for name, method := range deliveries {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, method, nil)
			h.verified(t, expected(method))
			s := h.emu.setFor(supportedEvents[0], map[string]any{}, map[string]any{"format": "email", "email": "ada@example.com"})
			h.emu.send(s)
			if got := h.emu.waitOutcome(s.jti); got != expected(method) {
				t.Fatalf("first delivery: %q", got)
			}
			h.waitHandled(t, s.jti)
			h.emu.mu.Lock()
			delete(h.emu.pushAnswers, s.jti)
			h.emu.mu.Unlock()
			h.emu.send(s)
			want := "202"
			if method == schemas.DeliveryPoll {
				want = "ack x2"
			}
			for range 500 {
				if h.emu.outcome(s.jti) == want {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got := h.emu.outcome(s.jti); got != want {
				t.Fatalf("replay answered %q, want %q", got, want)
			}
			time.Sleep(50 * time.Millisecond) // a wrongly accepted replay would be handled by now
			if n := h.handledCount(s.jti); n != 1 {
				t.Fatalf("handled %d times", n)
			}
			if st := h.rcv.Statuses()[0]; st.Duplicates != 1 {
				t.Fatalf("status: %+v", st)
			}
		})
	}
}

func tamper(s signed) signed {
	i := strings.LastIndexByte(s.token, '.')
	sig := []byte(s.token[i+1:])
	if sig[5] == 'A' {
		sig[5] = 'B'
	} else {
		sig[5] = 'A'
	}
	s.token = s.token[:i+1] + string(sig)
	return s
}

func unsigned(claims map[string]any) signed {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]any{"alg": "none", "typ": "secevent+jwt"})
	p, _ := json.Marshal(claims)
	return signed{jti: claims["jti"].(string), token: enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "."}
}

func hs256(header, claims map[string]any, secret []byte) signed {
	p, _ := json.Marshal(claims)
	return signed{jti: claims["jti"].(string), token: forgeHS256(header, p, secret)}
}

// TestKeeperNeverTakesAnotherRegistrationsStream: on a transmitter that allows one stream per receiver, a second
// registration with the same credentials reports the conflict instead of replacing the first one's stream; a
// registration without an event list asks for every CAEP and RISC event.
func TestKeeperNeverTakesAnotherRegistrationsStream(t *testing.T) {
	h := newHarness(t, schemas.DeliveryPoll, nil)
	h.verified(t, "ack")
	first := h.emu.streamID()
	h.emu.mu.Lock()
	requested := h.emu.stream["events_requested"].([]string)
	h.emu.mu.Unlock()
	if !slices.Contains(requested, string(schemas.EventSessionRevoked)) || !slices.Contains(requested, string(schemas.EventAccountPurged)) {
		t.Fatalf("a registration without events asked for %v", requested)
	}
	k, err := receiver.NewKeeper(h.rcv, receiver.Registration{Name: "other", Issuer: h.emu.issuer(),
		Token: receiver.StaticToken(emuToken), Delivery: schemas.DeliveryPoll, VerifyInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = k.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for range 500 {
		for _, st := range h.rcv.Statuses() {
			if st.Name == "other" && strings.Contains(st.Error, "one stream per receiver") {
				if h.emu.streamID() != first {
					t.Fatalf("the stream of emu was replaced by %s", h.emu.streamID())
				}
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the second registration did not report the conflict: %+v", h.rcv.Statuses())
}
