package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
)

// child is an `ssfd serve --dev` process running from this test binary.
type child struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
}

// startChild starts `ssfd serve --dev` on addr and waits until it serves. With a port of 0 the child picks a
// free port itself and the test reads it from the child's banner, so that no other test can take the port in
// between; a restart passes the address the first start printed.
func startChild(t *testing.T, dataDir, addr string) *child {
	t.Helper()
	return startSSFD(t, "serve", "--dev", "--data-dir", dataDir, "--http-addr", addr,
		"--nats-listen", "127.0.0.1:0", "--min-verification-interval", "0s")
}

// startSSFD starts this test binary as ssfd with args and waits until it serves.
func startSSFD(t *testing.T, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SSFD_TEST_MAIN=1")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, logs: logs}
	t.Cleanup(func() { c.kill() })
	const banner = "ssfd is serving on "
	deadline := time.Now().Add(30 * time.Second)
	for c.url == "" {
		if out := logs.String(); strings.Contains(out, banner) {
			c.url = strings.Fields(out[strings.Index(out, banner)+len(banner):])[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssfd did not start:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get(c.url + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("ssfd is not healthy: %v\n%s", err, logs)
	}
	resp.Body.Close()
	return c
}

// addr returns the host:port the child serves on.
func (c *child) addr() string { return strings.TrimPrefix(c.url, "http://") }

func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		_ = c.cmd.Wait()
	}
}

// TestCrashLosesNoAcceptedEvent kills the server with SIGKILL while events are being emitted, restarts it on the
// same data directory, and checks that every event whose emit was answered 202 is delivered by poll, and that
// no SET comes back after it was acknowledged (DESIGN.md "Nothing acknowledged is lost").
func TestCrashLosesNoAcceptedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	dir := t.TempDir()
	first := startChild(t, dir, "127.0.0.1:0")
	addr := first.addr()
	tok := adminToken(t, dir)
	ctx := context.Background()
	client, err := receiver.Discover(ctx, first.url, receiver.WithToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := client.CreateStream(ctx, receiver.StreamRequest{EventsRequested: []schemas.EventType{schemas.EventSessionRevoked}})
	if err != nil {
		t.Fatal(err)
	}
	// Emit from several goroutines until the process is killed; record every txn that was answered 202.
	prod := startProducers(first.url, tok, 4)
	waitFor(t, "300 events are accepted", first, func() bool { return prod.count() >= 300 })
	first.kill() // SIGKILL while emits are in flight
	accepted := prod.halt()

	second := startChild(t, dir, addr)
	client, err = receiver.Discover(ctx, second.url, receiver.WithToken(tok), receiver.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := keys.NewRemoteJWKS(client.Metadata().JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := receiver.NewVerifier(jwks, client.Metadata().Issuer, stream.Audience)
	if err != nil {
		t.Fatal(err)
	}
	delivered, acked := map[string]bool{}, map[string]bool{}
	var pending []string
	max := 100
	for round := 0; round < 10_000; round++ {
		resp, err := client.Poll(ctx, stream.Delivery.EndpointURL, schemas.PollRequest{Ack: pending, MaxEvents: &max, ReturnImmediately: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range pending {
			acked[j] = true
		}
		pending = pending[:0]
		for jti, token := range resp.Sets {
			if acked[jti] {
				t.Fatalf("SET %s came back after it was acknowledged", jti)
			}
			set, err := verifier.Verify(ctx, token)
			if err != nil {
				t.Fatalf("SET %s does not verify after the crash: %v", jti, err)
			}
			delivered[set.Txn] = true
			pending = append(pending, jti)
		}
		if len(resp.Sets) == 0 {
			break
		}
	}
	for txn := range accepted {
		if !delivered[txn] {
			t.Errorf("event %s was accepted with 202 but never delivered", txn)
		}
	}
	t.Logf("%d events accepted before SIGKILL, %d delivered after restart", len(accepted), len(delivered))
}

// adminToken reads the --dev admin token of a data directory.
func adminToken(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

// producers emit session-revoked events from several goroutines until stopped or until the server goes away,
// recording every txn the server answered with 202.
type producers struct {
	mu       sync.Mutex
	accepted map[string]bool
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startProducers(url, tok string, n int) *producers {
	p := &producers{accepted: map[string]bool{}, stop: make(chan struct{})}
	hc := &http.Client{Timeout: 5 * time.Second}
	for g := range n {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-p.stop:
					return
				default:
				}
				txn := fmt.Sprintf("g%d-%05d", g, i)
				body := `{"event_type":"` + string(schemas.EventSessionRevoked) + `","subject":{"format":"email","email":"ada@example.com"},"txn":"` + txn + `"}`
				req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/events", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := hc.Do(req)
				if err != nil {
					return // the server is gone
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					p.mu.Lock()
					p.accepted[txn] = true
					p.mu.Unlock()
				}
			}
		}()
	}
	return p
}

// halt stops the producers and returns the txns that were accepted.
func (p *producers) halt() map[string]bool {
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// count returns how many events were accepted so far.
func (p *producers) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.accepted)
}

// waitFor polls cond until it holds, failing after a minute with what the server logged.
func waitFor(t *testing.T, what string, c *child, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s\n%s", what, c.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
