package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
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
	h := newHarness(t, func(c *config.Config) {
		c.Revocation.CheckAudiences, c.Revocation.CheckToken = []string{"https://rs.example.org"}, "gateway-secret"
	})
	const agent = "spiffe://example.org/tenant/acme/agent/checked"
	secret := h.registerClient(issuer.ClientRequest{ID: agent, Tenant: "acme", Scopes: []string{"x"}, Resources: []string{"https://rs.example.org"}})
	_, out := h.form(issuer.PathToken, agent, secret, url.Values{"grant_type": {issuer.GrantClientCredentials}})
	tok := out["access_token"].(string)
	check := func() map[string]any {
		status, _, body := h.checkCall(map[string]string{"token": tok}, "gateway-secret")
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
	if status, _, body := h.checkCall("{not json", "gateway-secret"); status != http.StatusBadRequest {
		t.Fatalf("bad JSON: %d %s", status, body)
	}
	if status, _, body := h.checkCall(map[string]string{"token": tok}, "wrong"); status != http.StatusUnauthorized {
		t.Fatalf("without the gateway's secret: %d %s", status, body)
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

// TestReceivedCAEPEventsReachTheIndex: a session-revoked SET from an identity provider the receiver subscribes
// to names one of the IdP's sessions, not one of ssfd's nodes, so it becomes a watermark on the user on the NATS
// feed, and the index of a server following that feed refuses the user's tokens issued before it.
func TestReceivedCAEPEventsReachTheIndex(t *testing.T) {
	tx := newHarness(t, fastRetries)
	rx := newReceiverNode(t, tx, config.Registration{Name: "idp", Issuer: tx.issuer, Token: tx.token, Delivery: "poll",
		Events: []string{"session-revoked"}})
	rx.waitVerified()
	below := revocation.Token{JTI: "t_below", IssuedAt: time.Now().Add(-time.Second), Path: []string{"s_ours", "s_child"},
		Keys: []revocation.Key{{Kind: revocation.KeySubject, Value: "https://idp.example.org|u-1"}}}
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
		return tx.srv.RevocationIndex().Check(below) == "revoked: sub"
	})
}

// TestReceivedRevocationReachesTheIssuer: an identity provider's session-revoked for a user also revokes, at
// ssfd's issuer, the session nodes of that user, so no exchange or refresh mints from them again; and the
// issuer sends no CAEP event back for it.
func TestReceivedRevocationReachesTheIssuer(t *testing.T) {
	idp := newHarness(t, fastRetries)
	h := newHarness(t, func(c *config.Config) {
		c.Receiver.Registrations = []config.Registration{{Name: "idp", Issuer: idp.issuer, Token: idp.token, Delivery: "poll",
			Events: []string{"session-revoked"}}}
	})
	waitFor(t, "the registration is verified", func() bool {
		st := h.srv.Receiver().Statuses()
		return len(st) == 1 && !st[0].LastVerification.IsZero()
	})
	const agent = "spiffe://example.org/tenant/acme/agent/assistant"
	h.registerClient(issuer.ClientRequest{ID: agent, Tenant: "acme", Scopes: []string{"x"}, Resources: []string{"https://rs.example.org"},
		GrantTypes: issuer.GrantTypes()})
	status, _, body := h.call(http.MethodPost, issuer.PathSessions, h.token, issuer.SessionRequest{
		User: issuer.Principal{Issuer: "https://idp.example.org", Subject: "u-1"}, Agent: agent, Scopes: []string{"x"},
		Resources: []string{"https://rs.example.org"}})
	if status != http.StatusCreated {
		t.Fatalf("open session: %d %s", status, body)
	}
	var sess issuer.Session
	if err := json.Unmarshal(body, &sess); err != nil {
		t.Fatal(err)
	}
	before, _ := h.srv.TokenIssuer().Store().Ops(t.Context(), 0, 100)
	status, body = idp.emit(`{"event_type":"https://schemas.openid.net/secevent/caep/event-type/session-revoked",
		"subject":{"format":"complex","session":{"format":"opaque","id":"okta-sid-1"},"user":{"format":"iss_sub","iss":"https://idp.example.org","sub":"u-1"}},
		"event":{"initiating_entity":"policy","reason_admin":{"en":"risk"}}}`)
	if status != http.StatusAccepted {
		t.Fatalf("emit: %d %s", status, body)
	}
	waitFor(t, "the issuer revoked the user's session node", func() bool {
		n, err := h.srv.TokenIssuer().Store().Node(t.Context(), sess.Node.ID)
		return err == nil && !n.RevokedAt.IsZero()
	})
	if _, err := h.srv.TokenIssuer().VerifyAccessToken(t.Context(), sess.Token.AccessToken); err == nil {
		t.Fatal("the user's token is still valid at the issuer")
	}
	after, _ := h.srv.TokenIssuer().Store().Ops(t.Context(), 0, 100)
	if len(after) != len(before)+1 || after[len(after)-1].Source != issuer.SourceReceived {
		t.Fatalf("ops at the issuer: %d before, %+v after", len(before), after)
	}
}

// checkCall posts body to the check API with the gateway's secret.
func (h *harness) checkCall(body any, secret string) (int, http.Header, []byte) {
	h.t.Helper()
	var data []byte
	switch b := body.(type) {
	case string:
		data = []byte(b)
	default:
		data, _ = json.Marshal(b)
	}
	req, err := http.NewRequest(http.MethodPost, h.base+server.PathCheck, bytes.NewReader(data))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(server.CheckTokenHeader, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// TestWatermarkKeysAgree: the issuer (which records watermarks and revokes nodes by key) and the resource
// servers' index (which checks tokens by key) derive a token's keys on their own, since the two roles may not
// import each other. For every shape of token the issuer mints they must be the same set, or a kill switch would
// miss.
func TestWatermarkKeysAgree(t *testing.T) {
	cases := []issuer.Claims{
		{Issuer: "https://as", Subject: "agent-a", ClientID: "agent-a", Tenant: "acme"},
		{Issuer: "https://as", Subject: "u-1", SubjectIssuer: "https://idp", ClientID: "c", Tenant: "acme", AgentClass: "bp",
			Act: &issuer.Actor{Subject: "c", Act: &issuer.Actor{Subject: "b", Act: &issuer.Actor{Subject: "a"}}}},
		{Issuer: "https://as", Subject: "receiver", ClientID: "receiver"},
	}
	for i, c := range cases {
		data, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var rc revocation.Claims
		if err := json.Unmarshal(data, &rc); err != nil {
			t.Fatal(err)
		}
		fromIssuer := map[string]bool{}
		for _, k := range c.Keys("kid-1") {
			fromIssuer[string(k.Kind)+" "+k.Value] = true
		}
		fromIndex := map[string]bool{}
		for _, k := range rc.Token("kid-1").Keys {
			fromIndex[k.Kind+" "+k.Value] = true
		}
		if len(fromIssuer) != len(fromIndex) {
			t.Fatalf("case %d: issuer keys %v, index keys %v", i, fromIssuer, fromIndex)
		}
		for k := range fromIssuer {
			if !fromIndex[k] {
				t.Fatalf("case %d: the index does not check %q (issuer %v, index %v)", i, k, fromIssuer, fromIndex)
			}
		}
	}
}

// TestRevocationFeedHeartbeat: the issuer's process puts heartbeats on the feed, its index sees them, and
// /readyz reports the feed fresh.
func TestRevocationFeedHeartbeat(t *testing.T) {
	h := newHarness(t)
	waitFor(t, "a heartbeat arrived", func() bool { return !h.srv.RevocationIndex().LastHeartbeat().IsZero() })
	status, _, body := h.call(http.MethodGet, "/readyz", "", nil)
	if status != http.StatusOK || !strings.Contains(string(body), `"revocation_feed":"ok"`) || !strings.Contains(string(body), `"revocation_index":"ok"`) {
		t.Fatalf("/readyz: %d %s", status, body)
	}
}

// TestHeartbeatStaleness: a feed whose last heartbeat is older than HeartbeatStale is stale; one that never had a
// heartbeat is not judged by it.
func TestHeartbeatStaleness(t *testing.T) {
	ix := revocation.NewIndex()
	ix.SetReady()
	if _, stale := server.HeartbeatStaleAt(ix, time.Now().Add(time.Hour)); stale {
		t.Fatal("a feed without heartbeats is judged by them")
	}
	if err := ix.Apply(revocation.Op{ID: "hb", Kind: revocation.OpHeartbeat, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, stale := server.HeartbeatStaleAt(ix, time.Now().Add(server.HeartbeatStale/2)); stale {
		t.Fatal("a fresh heartbeat is stale")
	}
	if reason, stale := server.HeartbeatStaleAt(ix, time.Now().Add(server.HeartbeatStale+time.Second)); !stale ||
		!strings.Contains(reason, "no heartbeat") {
		t.Fatalf("an old heartbeat: %q %v", reason, stale)
	}
}
