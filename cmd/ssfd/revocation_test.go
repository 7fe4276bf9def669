package main

import (
	"bufio"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tourKillSwitch: the README's steps 18–20 — a demo resource server accepts an agent token, the kill switch is
// acknowledged by both resource servers, and the token is then refused with 401 "token revoked", the demo resource
// server printing the propagation time.
func tourKillSwitch(t *testing.T, srv *child, dir string, common []string) {
	t.Helper()
	natsURL := srv.natsURL(t)
	rs := exec.Command(srv.cmd.Path, "demo-rs", "--addr", "127.0.0.1:0", "--issuer", srv.url, "--audience", "https://demo.example.org",
		"--nats-url", natsURL)
	rs.Env = append(srv.cmd.Env, "SSFD_TEST_MAIN=1")
	out, err := rs.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Process.Kill(); _ = rs.Wait() })
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody reads any more; keep draining the pipe
			}
		}
		close(lines)
	}()
	const banner = "demo resource server on http://"
	first := waitLine(t, lines, banner)
	rsAddr := strings.TrimSuffix(strings.Fields(first[strings.Index(first, banner)+len(banner):])[0], "/invoices")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) { // restored: /healthz 200
		resp, err := http.Get("http://" + rsAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("demo-rs did not restore its revocation index within 10s")
		}
	}

	const agent = "spiffe://example.org/tenant/acme/agent/reporter"
	secret := filepath.Join(dir, "c.secret")
	if code, _, errOut := runCLI(t, "", append([]string{"client", "create", "--id", agent, "--tenant", "acme", "--scope", "invoices.read",
		"--resource", "https://demo.example.org", "--secret-out", secret}, common...)...); code != 0 {
		t.Fatalf("client create: %s", errOut)
	}
	code, tok, errOut := runCLI(t, "", "token", "--url", srv.url, "--client-id", agent, "--client-secret-file", secret)
	if code != 0 {
		t.Fatalf("token: %s", errOut)
	}
	tok = strings.TrimSpace(tok)
	call := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+rsAddr+"/invoices", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate") + string(body)
	}
	if status, body := call(); status != http.StatusOK || !strings.Contains(body, "INV-1001") {
		t.Fatalf("before the kill switch: %d %s", status, body)
	}
	code, ks, errOut := runCLI(t, "", append([]string{"killswitch", "--agent", agent, "--reason", "compromised", "--wait", "10s",
		"--expect", "2"}, common...)...)
	if code != 0 || !strings.Contains(ks, "acknowledged by 2 resource server(s)") {
		t.Fatalf("killswitch: %d %s %s", code, ks, errOut)
	}
	if status, body := call(); status != http.StatusUnauthorized || !strings.Contains(body, `error_description="token revoked"`) {
		t.Fatalf("after the kill switch: %d %s", status, body)
	}
	waitLine(t, lines, "applied")
	waitLine(t, lines, "refused a revoked token: 401")
}

// waitLine waits (at most 10 s) for a line of the demo resource server containing s and returns it.
func waitLine(t *testing.T, lines <-chan string, s string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo-rs stopped before printing %q", s)
			}
			if strings.Contains(l, s) {
				return l
			}
		case <-deadline:
			t.Fatalf("demo-rs did not print %q within 10s", s)
		}
	}
}
