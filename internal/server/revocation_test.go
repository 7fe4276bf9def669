package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

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
