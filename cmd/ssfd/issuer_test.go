package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIssuerCommandsAgainstARealServer: register two agents, open a human session for the first, delegate to
// the second with a DPoP-bound exchange, show the tree, revoke the first agent's node and see the tree say so.
func TestIssuerCommandsAgainstARealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	dir := t.TempDir()
	srv := startChild(t, dir, "127.0.0.1:0")
	common := []string{"--url", srv.url, "--token-file", filepath.Join(dir, "admin.token")}
	const (
		a     = "spiffe://example.org/tenant/acme/agent/assistant"
		b     = "spiffe://example.org/tenant/acme/agent/invoice-bot"
		tools = "https://tools.example.org/mcp"
	)
	secret := func(id string, extra ...string) string {
		t.Helper()
		args := append([]string{"client", "create", "--id", id, "--tenant", "acme", "--scope", "invoices.read",
			"--resource", b, "--resource", tools, "--grant", "client_credentials",
			"--grant", "urn:ietf:params:oauth:grant-type:token-exchange"}, extra...)
		code, out, errOut := runCLI(t, "", append(args, common...)...)
		if code != 0 {
			t.Fatalf("client create %s: %d %s", id, code, errOut)
		}
		var reg struct {
			Secret string `json:"client_secret"`
		}
		if err := json.Unmarshal([]byte(out), &reg); err != nil || reg.Secret == "" {
			t.Fatalf("client create printed %q", out)
		}
		path := filepath.Join(dir, strings.ReplaceAll(id[len(id)-5:], "/", "")+".secret")
		if err := os.WriteFile(path, []byte(reg.Secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	secretA := secret(a, "--actor", b)
	secretB := filepath.Join(dir, "b.secret")
	code, out, errOut := runCLI(t, "", append([]string{"client", "create", "--id", b, "--tenant", "acme", "--scope", "invoices.read",
		"--resource", tools, "--grant", "urn:ietf:params:oauth:grant-type:token-exchange", "--secret-out", secretB}, common...)...)
	if code != 0 || strings.Contains(out, `"client_secret":`) || strings.Contains(out, "secret_hash") {
		t.Fatalf("client create --secret-out: %d %s %s", code, out, errOut)
	}
	if info, err := os.Stat(secretB); err != nil || info.Mode().Perm() != 0o600 || info.Size() < 40 {
		t.Fatalf("secret file: %v %v", info, err)
	}
	if code, out, _ := runCLI(t, "", append([]string{"client", "list"}, common...)...); code != 0 || !strings.Contains(out, b) {
		t.Fatalf("client list: %d %s", code, out)
	}

	rootFile := filepath.Join(dir, "root.token")
	code, out, errOut = runCLI(t, "", append([]string{"sessions", "create", "--token-out", rootFile, "--user-iss", "https://idp.example.org",
		"--user-sub", "u-1", "--agent", a, "--scope", "invoices.read", "--resource", b, "--resource", tools}, common...)...)
	if code != 0 {
		t.Fatalf("sessions create: %d %s", code, errOut)
	}
	var sess struct {
		Session struct {
			SID string `json:"sid"`
		} `json:"session"`
		Token struct {
			AccessToken string `json:"access_token"`
		} `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &sess); err != nil || sess.Token.AccessToken == "" {
		t.Fatalf("sessions create printed %q", out)
	}
	if data, err := os.ReadFile(rootFile); err != nil || strings.TrimSpace(string(data)) != sess.Token.AccessToken {
		t.Fatalf("--token-out wrote %q (%v)", data, err)
	}
	code, tokA, errOut := runCLI(t, "", "token", "--url", srv.url, "--client-id", a, "--client-secret-file", secretA,
		"--grant", "exchange", "--subject-token-file", rootFile, "--resource", b, "--scope", "invoices.read")
	if code != 0 || strings.Count(tokA, ".") != 2 {
		t.Fatalf("token exchange by A: %d %q %s", code, tokA, errOut)
	}
	aFile := filepath.Join(dir, "a.token")
	if err := os.WriteFile(aFile, []byte(tokA), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "dpop.jwk")
	if code, _, errOut := runCLI(t, "", "keys", "generate", "--alg", "ES256", "--out", keyFile); code != 0 {
		t.Fatalf("keys generate: %s", errOut)
	}
	code, out, errOut = runCLI(t, "", "token", "--url", srv.url, "--client-id", b, "--client-secret-file", secretB,
		"--grant", "exchange", "--subject-token-file", aFile, "--resource", tools, "--scope", "invoices.read",
		"--dpop-key-file", keyFile, "--show", "claims")
	if code != 0 {
		t.Fatalf("token exchange by B: %d %s", code, errOut)
	}
	var claims struct {
		Sub string `json:"sub"`
		Act struct {
			Sub string `json:"sub"`
			Act struct {
				Sub string `json:"sub"`
			} `json:"act"`
		} `json:"act"`
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
		Dlg struct {
			Depth int      `json:"depth"`
			Path  []string `json:"path"`
		} `json:"dlg"`
	}
	if err := json.Unmarshal([]byte(out), &claims); err != nil || claims.Sub != "u-1" || claims.Act.Sub != b ||
		claims.Act.Act.Sub != a || claims.Cnf.JKT == "" || claims.Dlg.Depth != 2 || claims.Dlg.Path[0] != sess.Session.SID {
		t.Fatalf("B's token claims %s", out)
	}

	code, out, errOut = runCLI(t, "", append([]string{"sessions", "tree", "--root", sess.Session.SID}, common...)...)
	if code != 0 || strings.Count(out, "\n") != 3 || strings.Count(out, "[active]") != 3 {
		t.Fatalf("sessions tree: %d %q %s", code, out, errOut)
	}
	nodeA := claims.Dlg.Path[1]
	code, out, errOut = runCLI(t, "", append([]string{"revoke", "--sid", nodeA, "--reason", "test"}, common...)...)
	if code != 0 || !strings.Contains(out, nodeA) {
		t.Fatalf("revoke: %d %s %s", code, out, errOut)
	}
	_, out, _ = runCLI(t, "", append([]string{"sessions", "tree", "--root", sess.Session.SID}, common...)...)
	if strings.Count(out, "[active]") != 1 || strings.Count(out, "revoked ") != 2 {
		t.Fatalf("tree after revoking A's node:\n%s", out)
	}
	code, out, errOut = runCLI(t, "", append([]string{"killswitch", "--agent", b, "--reason", "test", "--wait", "10s", "--expect", "1"}, common...)...)
	if code != 0 || !strings.Contains(out, "watermark actor:"+b) || !strings.Contains(out, "acknowledged by 1 resource server(s)") {
		t.Fatalf("killswitch: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "", append([]string{"revoke", "--sid", "s_x", "--agent", a}, common...)...); code == 0 ||
		!strings.Contains(errOut, "exactly one") {
		t.Fatalf("two targets: %d %s", code, errOut)
	}
}
