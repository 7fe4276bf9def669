package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/server"
	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/receiver/revocation"
)

// TestKillSwitchReachesTheIndexOverNATS: a kill switch on an agent is recorded by the issuer, carried over NATS
// to this process's revocation index, acknowledged, and from then on the agent's token is refused by the index
// and by the issuer, and no new token is issued for the agent.
func TestKillSwitchReachesTheIndexOverNATS(t *testing.T) {
	h := newHarness(t)
	const agent = "spiffe://example.org/tenant/acme/agent/kill-me"
	secret := h.registerClient(issuer.ClientRequest{ID: agent, Tenant: "acme", Scopes: []string{"x"}, Resources: []string{"https://rs.example.org"}})
	status, out := h.form(issuer.PathToken, agent, secret, url.Values{"grant_type": {issuer.GrantClientCredentials}})
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, out)
	}
	tok := out["access_token"].(string)
	claims := tokenClaims(t, tok)
	ix := h.srv.RevocationIndex()
	if reason := ix.Check(claims); reason != "" {
		t.Fatalf("a fresh token is refused: %s", reason)
	}
	status, _, body := h.call(http.MethodPost, server.PathKillSwitch, h.token, server.KillSwitchRequest{Agent: agent,
		Reason: "compromised", Wait: "10s", Expect: 1})
	if status != http.StatusOK {
		t.Fatalf("kill switch: %d %s", status, body)
	}
	var resp server.KillSwitchResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Acknowledged < 1 || len(resp.Ops) != 2 || resp.Ops[0].Kind != issuer.OpDisable || resp.Ops[1].Kind != issuer.OpWatermark {
		t.Fatalf("kill switch answer: %+v", resp)
	}
	if reason := ix.Check(claims); !strings.HasPrefix(reason, "revoked") {
		t.Fatalf("the index still accepts the agent's token after the acknowledgement: %q", reason)
	}
	if status, out := h.form(issuer.PathToken, agent, secret, url.Values{"grant_type": {issuer.GrantClientCredentials}}); status != 400 {
		t.Fatalf("a new token for a killed agent: %d %v", status, out)
	}
	_, _, metricsText := h.call(http.MethodGet, "/metrics", "", nil)
	for _, want := range []string{"ssfd_revocation_index_ready 1", "ssfd_revocation_feed_stale 0", "ssfd_revocation_index_entries 1",
		"ssfd_revocation_ops_applied_total 1", `ssfd_revocation_apply_lag_seconds_count{feed="nats"} 1`} {
		if !strings.Contains(string(metricsText), want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	if status, _, body := h.call(http.MethodPost, server.PathKillSwitch, h.token, map[string]any{"agent": agent, "session": "s_x"}); status != 400 {
		t.Fatalf("two targets: %d %s", status, body)
	}
	if status, _, body := h.call(http.MethodPost, server.PathKillSwitch, "", map[string]any{"agent": agent}); status != 401 {
		t.Fatalf("without a token: %d %s", status, body)
	}
}

// tokenClaims decodes an access token (unverified: the test made it) into what the index checks.
func tokenClaims(t *testing.T, tok string) revocation.Token {
	t.Helper()
	header, payload, err := keys.Decode(tok)
	if err != nil {
		t.Fatal(err)
	}
	var c revocation.Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(header, &hdr)
	return c.Token(hdr.Kid)
}

// TestCheckAPIAnswersForGateways: with check audiences configured, POST /api/v1/check allows a valid token and
// denies it once its agent's kill switch was applied; bad input is a 400.
func TestCheckAPIAnswersForGateways(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Revocation.CheckAudiences = []string{"https://rs.example.org"} })
	const agent = "spiffe://example.org/tenant/acme/agent/checked"
	secret := h.registerClient(issuer.ClientRequest{ID: agent, Tenant: "acme", Scopes: []string{"x"}, Resources: []string{"https://rs.example.org"}})
	_, out := h.form(issuer.PathToken, agent, secret, url.Values{"grant_type": {issuer.GrantClientCredentials}})
	tok := out["access_token"].(string)
	check := func() map[string]any {
		status, _, body := h.call(http.MethodPost, server.PathCheck, "", map[string]string{"token": tok})
		var res map[string]any
		if status != http.StatusOK || json.Unmarshal(body, &res) != nil {
			t.Fatalf("check: %d %s", status, body)
		}
		return res
	}
	if res := check(); res["allow"] != true || res["client_id"] != agent {
		t.Fatalf("a valid token: %v", res)
	}
	if status, _, _ := h.call(http.MethodPost, server.PathKillSwitch, h.token, server.KillSwitchRequest{Agent: agent, Wait: "10s", Expect: 1}); status != http.StatusOK {
		t.Fatalf("kill switch: %d", status)
	}
	if res := check(); res["allow"] != false || res["reason"] != "token revoked" {
		t.Fatalf("a revoked token: %v", res)
	}
	if status, _, body := h.call(http.MethodPost, server.PathCheck, "", "{not json"); status != http.StatusBadRequest {
		t.Fatalf("bad JSON: %d %s", status, body)
	}
	_, _, metricsText := h.call(http.MethodGet, "/metrics", "", nil)
	for _, want := range []string{`ssfd_revocation_check_duration_seconds_count{outcome="allow"} 1`,
		`ssfd_revocation_check_duration_seconds_count{outcome="revoked"} 1`,
		`ssfd_issuer_token_requests_total{grant="client_credentials",outcome="issued"} 1`} {
		if !strings.Contains(string(metricsText), want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
}

// TestRevocationIndexIsRestoredAfterARestart: the index of a restarted server replays the revocation feed
// before it reports ready, so a token revoked before the restart is still refused after it.
func TestRevocationIndexIsRestoredAfterARestart(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir, cfg.HTTPAddr, cfg.NATSListen, cfg.Dev = dir, "127.0.0.1:0", "127.0.0.1:0", true
	start := func() *harness {
		return newHarness(t, func(c *config.Config) { *c = cfg })
	}
	h := start()
	const agent = "spiffe://example.org/tenant/acme/agent/restarted"
	secret := h.registerClient(issuer.ClientRequest{ID: agent, Tenant: "acme", Scopes: []string{"x"}, Resources: []string{"https://rs.example.org"}})
	_, out := h.form(issuer.PathToken, agent, secret, url.Values{"grant_type": {issuer.GrantClientCredentials}})
	tok := tokenClaims(t, out["access_token"].(string))
	if status, _, body := h.call(http.MethodPost, server.PathKillSwitch, h.token, server.KillSwitchRequest{Agent: agent, Wait: "10s", Expect: 1}); status != http.StatusOK {
		t.Fatalf("kill switch: %d %s", status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	h2 := start() // waits until the index reports ready
	if reason := h2.srv.RevocationIndex().Check(tok); !strings.HasPrefix(reason, "revoked") {
		t.Fatalf("after a restart the revoked token is %q", reason)
	}
}

// TestReceivedCAEPEventsReachTheIndex: a session-revoked SET from a transmitter the receiver subscribes to
// becomes a revoke_node op on the NATS feed, and the index of a server following that feed refuses every token
// whose dlg.path holds the session.
func TestReceivedCAEPEventsReachTheIndex(t *testing.T) {
	tx := newHarness(t, fastRetries)
	rx := newReceiverNode(t, tx, config.Registration{Name: "idp", Issuer: tx.issuer, Token: tx.token, Delivery: "poll",
		Events: []string{"session-revoked"}})
	rx.waitVerified()
	below := revocation.Token{JTI: "t_below", IssuedAt: time.Now(), Path: []string{"s_upstream_root", "s_child"}}
	if reason := tx.srv.RevocationIndex().Check(below); reason != "" {
		t.Fatalf("before the event: %q", reason)
	}
	status, body := tx.emit(`{"event_type":"https://schemas.openid.net/secevent/caep/event-type/session-revoked",
		"subject":{"format":"complex","session":{"format":"opaque","id":"s_upstream_root"},"user":{"format":"iss_sub","iss":"https://idp.example.org","sub":"u-1"}},
		"event":{"initiating_entity":"policy","reason_admin":{"en":"risk"}}}`)
	if status != http.StatusAccepted {
		t.Fatalf("emit: %d %s", status, body)
	}
	waitFor(t, "the receiver's op reached the index", func() bool {
		return tx.srv.RevocationIndex().Check(below) == revocation.ReasonSession
	})
}
