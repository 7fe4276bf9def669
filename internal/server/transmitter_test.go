package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/schemas"
)

const revoked = `{"event_type":"https://schemas.openid.net/secevent/caep/event-type/session-revoked",` +
	`"subject":{"format":"email","email":"ada@example.com"},"event":{"initiating_entity":"admin","reason_admin":{"en":"test"}}}`

// emit posts an intake body and returns the status and the accepted SETs.
func (h *harness) emit(body string) (int, []byte) {
	h.t.Helper()
	status, _, out := h.call(http.MethodPost, "/api/v1/events", h.token, body)
	return status, out
}

func TestEmitIsDeliveredByPollAsAVerifiableSET(t *testing.T) {
	h := newHarness(t)
	cfg := h.createPollStream()
	status, out := h.emit(revoked)
	if status != http.StatusAccepted {
		t.Fatalf("emit: %d %s", status, out)
	}
	var accepted struct {
		Accepted []struct {
			Txn  string `json:"txn"`
			SETs []struct {
				StreamID string `json:"stream_id"`
				JTI      string `json:"jti"`
			} `json:"sets"`
		} `json:"accepted"`
	}
	if err := json.Unmarshal(out, &accepted); err != nil || len(accepted.Accepted) != 1 || len(accepted.Accepted[0].SETs) != 1 {
		t.Fatalf("emit answer: %s", out)
	}
	jti := accepted.Accepted[0].SETs[0].JTI
	resp := h.poll(cfg, schemas.PollRequest{ReturnImmediately: true})
	tok, ok := resp.Sets[jti]
	if !ok {
		t.Fatalf("the emitted SET %s is not in the poll answer %v", jti, resp.Sets)
	}
	set, err := h.verifier(cfg.Audience[0]).Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if set.Event.Type != schemas.EventSessionRevoked || set.Txn != accepted.Accepted[0].Txn ||
		set.Subject.String() != `{"format":"email","email":"ada@example.com"}` {
		t.Fatalf("SET: %+v", set)
	}
}

func TestIntakeRefusesBadEventsAndQueuesNothing(t *testing.T) {
	h := newHarness(t)
	cfg := h.createPollStream()
	cases := []struct {
		name, body, path string
	}{
		{"reason_admin as a string", `{"event_type":"https://schemas.openid.net/secevent/caep/event-type/session-revoked","subject":{"format":"email","email":"a@b"},"event":{"reason_admin":"x"}}`, "/event/reason_admin"},
		{"unknown subject format", `{"event_type":"https://schemas.openid.net/secevent/caep/event-type/session-revoked","subject":{"format":"phone","phone_number":"+1555"}}`, "/subject/format"},
		{"missing subject", `{"event_type":"https://schemas.openid.net/secevent/caep/event-type/session-revoked"}`, "/subject"},
		{"verification from a producer", `{"event_type":"https://schemas.openid.net/secevent/ssf/event-type/verification","subject":{"format":"email","email":"a@b"}}`, "/event_type"},
		{"one bad event spoils the batch", `[` + revoked + `,{"event_type":"x:y","subject":{"format":"email","email":"a@b"}}]`, "/1/event_type"},
		{"malformed JSON", `{"event_type":`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := h.emit(tc.body)
			if status != http.StatusBadRequest {
				t.Fatalf("status %d: %s", status, out)
			}
			if tc.path != "" && !strings.Contains(string(out), `"path":"`+tc.path+`"`) {
				t.Fatalf("want a problem at %s: %s", tc.path, out)
			}
		})
	}
	if resp := h.poll(cfg, schemas.PollRequest{ReturnImmediately: true}); len(resp.Sets) != 0 {
		t.Fatalf("refused events queued %d SETs", len(resp.Sets))
	}
}

func TestPausedStreamHoldsAndDisabledStreamDrops(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	cfg := h.createPollStream()
	if _, err := h.client.SetStatus(ctx, cfg.StreamID, schemas.StatusPaused, "maintenance"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if status, out := h.emit(revoked); status != http.StatusAccepted {
			t.Fatalf("emit: %d %s", status, out)
		}
	}
	if resp := h.poll(cfg, schemas.PollRequest{ReturnImmediately: true}); len(resp.Sets) != 0 {
		t.Fatalf("ST-01: a paused stream delivered %d SETs", len(resp.Sets))
	}
	if _, err := h.client.SetStatus(ctx, cfg.StreamID, schemas.StatusEnabled, ""); err != nil {
		t.Fatal(err)
	}
	if resp := h.poll(cfg, schemas.PollRequest{ReturnImmediately: true}); len(resp.Sets) != 3 {
		t.Fatalf("paused stream must hold and then deliver 3 SETs, got %d", len(resp.Sets))
	}
	if _, err := h.client.SetStatus(ctx, cfg.StreamID, schemas.StatusDisabled, ""); err != nil {
		t.Fatal(err)
	}
	status, out := h.emit(revoked)
	if status != http.StatusAccepted || strings.Contains(string(out), cfg.StreamID) {
		t.Fatalf("a disabled stream must get no SET: %d %s", status, out)
	}
	if _, err := h.client.SetStatus(ctx, cfg.StreamID, schemas.StatusEnabled, ""); err != nil {
		t.Fatal(err)
	}
	if resp := h.poll(cfg, schemas.PollRequest{ReturnImmediately: true}); len(resp.Sets) != 0 {
		t.Fatalf("a disabled stream holds nothing, got %d SETs", len(resp.Sets))
	}
}

func TestStreamsOfAnotherClientAreInvisible(t *testing.T) {
	const other = "other-client-token"
	h := newHarness(t, func(c *config.Config) {
		c.Tokens = []config.Token{{Value: other, ClientID: "other", Scopes: []string{"ssf.manage", "ssf.read"}}}
	})
	cfg := h.createPollStream()
	cases := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/ssf/streams?stream_id=" + cfg.StreamID, nil},
		{http.MethodPatch, "/ssf/streams", map[string]any{"stream_id": cfg.StreamID, "description": "mine now"}},
		{http.MethodPut, "/ssf/streams", map[string]any{"stream_id": cfg.StreamID}},
		{http.MethodDelete, "/ssf/streams?stream_id=" + cfg.StreamID, nil},
		{http.MethodGet, "/ssf/status?stream_id=" + cfg.StreamID, nil},
		{http.MethodPost, "/ssf/status", map[string]any{"stream_id": cfg.StreamID, "status": "disabled"}},
		{http.MethodPost, "/ssf/verify", map[string]any{"stream_id": cfg.StreamID}},
		{http.MethodPost, "/ssf/subjects:add", map[string]any{"stream_id": cfg.StreamID, "subject": map[string]any{"format": "opaque", "id": "x"}}},
		{http.MethodPost, "/ssf/poll/" + cfg.StreamID, map[string]any{"returnImmediately": true}},
	}
	for _, tc := range cases {
		if status, _, body := h.call(tc.method, tc.path, other, tc.body); status != http.StatusNotFound {
			t.Errorf("API-03: %s %s by another client: %d %s", tc.method, tc.path, status, body)
		}
	}
	status, _, body := h.call(http.MethodGet, "/ssf/streams", other, nil)
	if status != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("RD-02: another client's list: %d %s", status, body)
	}
	if got, err := h.client.GetStream(context.Background(), cfg.StreamID); err != nil || got.Description != "conformance test" {
		t.Fatalf("the owner's stream changed: %+v %v", got, err)
	}
}

func TestScopesAreEnforced(t *testing.T) {
	const reader = "read-only-token"
	h := newHarness(t, func(c *config.Config) {
		c.Tokens = []config.Token{{Value: reader, ClientID: "admin", Scopes: []string{"ssf.read"}}}
	})
	status, hdr, _ := h.call(http.MethodPost, "/ssf/streams", reader, `{}`)
	if status != http.StatusForbidden || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("API-08: %d %q", status, hdr.Get("WWW-Authenticate"))
	}
	if status, _, _ := h.call(http.MethodPost, "/api/v1/events", reader, revoked); status != http.StatusForbidden {
		t.Fatalf("emit without ssf.emit: %d", status)
	}
	if status, _, _ := h.call(http.MethodGet, "/ssf/streams", reader, nil); status != http.StatusOK {
		t.Fatalf("read with ssf.read: %d", status)
	}
}

func TestOversizedBodiesAreRefused(t *testing.T) {
	h := newHarness(t)
	big := `{"description":"` + strings.Repeat("x", 2<<20) + `"}`
	if status, _, _ := h.call(http.MethodPost, "/ssf/streams", h.token, big); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("GO-12: %d", status)
	}
	if status, _, _ := h.call(http.MethodGet, "/ssf/streams", h.token, nil); status != http.StatusOK {
		t.Fatal("the refused body must change nothing")
	}
}

func TestVF20_VerificationInsideTheIntervalIs429(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.MinVerificationInterval = time.Hour })
	cfg := h.createPollStream()
	if cfg.MinVerificationInterval != 3600 {
		t.Fatalf("min_verification_interval = %d", cfg.MinVerificationInterval)
	}
	body := map[string]any{"stream_id": cfg.StreamID}
	if status, _, _ := h.call(http.MethodPost, "/ssf/verify", h.token, body); status != http.StatusNoContent {
		t.Fatalf("first verification: %d", status)
	}
	status, hdr, _ := h.call(http.MethodPost, "/ssf/verify", h.token, body)
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("second verification: %d Retry-After %q", status, hdr.Get("Retry-After"))
	}
}

func TestLongPollWakesWhenASETIsQueued(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.PollTimeout = 20 * time.Second })
	cfg := h.createPollStream()
	got := make(chan *schemas.PollResponse, 1)
	errc := make(chan error, 1)
	go func() {
		resp, err := h.client.Poll(context.Background(), cfg.Delivery.EndpointURL, schemas.PollRequest{})
		if err != nil {
			errc <- err
			return
		}
		got <- resp
	}()
	// Emit until the long poll answers, so the test does not depend on when the poll started waiting.
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	emitted := 0
	for {
		select {
		case resp := <-got:
			if len(resp.Sets) == 0 || len(resp.Sets) > emitted {
				t.Fatalf("PO-11: long poll answered with %d SETs after %d emits", len(resp.Sets), emitted)
			}
			return
		case err := <-errc:
			t.Fatal(err)
		case <-deadline:
			t.Fatal("the long poll did not wake")
		case <-tick.C:
			if emitted == 0 {
				if status, out := h.emit(revoked); status != http.StatusAccepted {
					t.Fatalf("emit: %d %s", status, out)
				}
				emitted++
			}
		}
	}
}

func TestSubjectsDecideWhichStreamsCarryAnEvent(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	cfg := h.createPollStream()
	ada, _ := schemas.NewEmail("ada@example.com")
	if err := h.client.RemoveSubject(ctx, cfg.StreamID, ada); err != nil {
		t.Fatal(err)
	}
	if status, out := h.emit(revoked); status != http.StatusAccepted || strings.Contains(string(out), cfg.StreamID) {
		t.Fatalf("a removed subject must not be carried under default_subjects ALL: %s", out)
	}
	if err := h.client.AddSubject(ctx, cfg.StreamID, ada, nil); err != nil {
		t.Fatal(err)
	}
	if status, out := h.emit(revoked); status != http.StatusAccepted || !strings.Contains(string(out), cfg.StreamID) {
		t.Fatalf("a re-added subject is carried again: %s", out)
	}
}

func TestSetErrsAreRecordedForOperators(t *testing.T) {
	h := newHarness(t)
	cfg := h.createPollStream()
	if status, out := h.emit(revoked); status != http.StatusAccepted {
		t.Fatalf("emit: %d %s", status, out)
	}
	got := h.poll(cfg, schemas.PollRequest{ReturnImmediately: true})
	var jti string
	for j := range got.Sets {
		jti = j
	}
	zero := 0
	h.poll(cfg, schemas.PollRequest{MaxEvents: &zero, ReturnImmediately: true,
		SetErrs: map[string]schemas.SETError{jti: {Err: schemas.ErrInvalidKey, Description: "unknown kid"}}})
	if again := h.poll(cfg, schemas.PollRequest{ReturnImmediately: true}); len(again.Sets) != 0 {
		t.Fatal("a SET reported in setErrs must not be delivered again")
	}
	status, _, body := h.call(http.MethodGet, "/api/v1/streams/"+cfg.StreamID+"/dead-letters", h.token, nil)
	if status != http.StatusOK || !strings.Contains(string(body), `"jti":"`+jti+`"`) || !strings.Contains(string(body), `"err":"invalid_key"`) {
		t.Fatalf("set-errors: %d %s", status, body)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		status, _, body := h.call(http.MethodGet, path, "", nil)
		if status != http.StatusOK || !strings.Contains(string(body), "ok") {
			t.Fatalf("%s: %d %s", path, status, body)
		}
	}
}
