package main

import (
	"context"
	"fmt"
	"net"
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
	logs *strings.Builder
}

func startChild(t *testing.T, dataDir, addr string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--dev", "--data-dir", dataDir, "--http-addr", addr,
		"--nats-listen", "127.0.0.1:0", "--min-verification-interval", "0s")
	cmd.Env = append(os.Environ(), "SSFD_TEST_MAIN=1")
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, url: "http://" + addr, logs: logs}
	t.Cleanup(func() { c.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(c.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssfd did not become healthy: %v\n%s", err, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		_ = c.cmd.Wait()
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestCrashLosesNoAcceptedEvent kills the server with SIGKILL while events are being emitted, restarts it on the
// same data directory, and checks that every event whose emit was answered 202 is delivered by poll, and that
// no SET comes back after it was acknowledged (DESIGN.md "Nothing acknowledged is lost").
func TestCrashLosesNoAcceptedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	dir, addr := t.TempDir(), freeAddr(t)
	first := startChild(t, dir, addr)
	tokBytes, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(tokBytes))
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
	var mu sync.Mutex
	accepted := map[string]bool{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	hc := &http.Client{Timeout: 5 * time.Second}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				txn := fmt.Sprintf("g%d-%d", g, i)
				body := `{"event_type":"` + string(schemas.EventSessionRevoked) + `","subject":{"format":"email","email":"ada@example.com"},"txn":"` + txn + `"}`
				req, _ := http.NewRequest(http.MethodPost, first.url+"/api/v1/events", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := hc.Do(req)
				if err != nil {
					return // the server is gone
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					mu.Lock()
					accepted[txn] = true
					mu.Unlock()
				}
			}
		}()
	}
	waitUntil := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(accepted)
		mu.Unlock()
		if n >= 300 {
			break
		}
		if time.Now().After(waitUntil) {
			t.Fatalf("only %d events accepted in 60s\n%s", n, first.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	first.kill() // SIGKILL while emits are in flight
	close(stop)
	wg.Wait()

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
	mu.Lock()
	defer mu.Unlock()
	for txn := range accepted {
		if !delivered[txn] {
			t.Errorf("event %s was accepted with 202 but never delivered", txn)
		}
	}
	t.Logf("%d events accepted before SIGKILL, %d delivered after restart", len(accepted), len(delivered))
}
