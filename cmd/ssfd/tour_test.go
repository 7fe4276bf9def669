package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestCLIAgainstARealServer drives the README's first steps with the CLI: create a stream, emit, poll and
// acknowledge, verify the SET, and see the stream empty.
func TestCLIAgainstARealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	dir := t.TempDir()
	srv := startChild(t, dir, "127.0.0.1:0")
	common := []string{"--url", srv.url, "--token-file", filepath.Join(dir, "admin.token")}
	code, out, errOut := runCLI(t, "", append([]string{"stream", "create", "--description", "tour"}, common...)...)
	if code != 0 {
		t.Fatalf("stream create: %d %s", code, errOut)
	}
	var cfg struct {
		StreamID string `json:"stream_id"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil || cfg.StreamID == "" {
		t.Fatalf("stream create printed %q: %v", out, err)
	}
	code, out, errOut = runCLI(t, "", append([]string{"emit", "--type", "session-revoked",
		"--subject", `{"format":"email","email":"ada@example.com"}`, "--event", `{"initiating_entity":"admin"}`}, common...)...)
	if code != 0 || !strings.Contains(out, cfg.StreamID) {
		t.Fatalf("emit: %d %s %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", append([]string{"poll", "--stream", cfg.StreamID, "--ack"}, common...)...)
	if code != 0 || !strings.Contains(out, "session-revoked") || !strings.Contains(errOut, "acknowledged 1") {
		t.Fatalf("poll: %d %s %s", code, out, errOut)
	}
	var polled struct {
		SET string `json:"set"`
	}
	if err := json.Unmarshal([]byte(out), &polled); err != nil || polled.SET == "" {
		t.Fatalf("poll printed %q: %v", out, err)
	}
	code, _, errOut = runCLI(t, "", "set", "verify", "--jwks", srv.url+"/jwks.json", "--iss", srv.url, "--aud", "admin", polled.SET)
	if code != 0 {
		t.Fatalf("set verify: %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "", append([]string{"poll", "--stream", cfg.StreamID}, common...)...)
	if code != 0 || !strings.Contains(errOut, "no SETs waiting") {
		t.Fatalf("poll after ack: %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "", append([]string{"stream", "status", cfg.StreamID, "--set", "Paused"}, common...)...)
	if code != 2 || !strings.Contains(errOut, "400") {
		t.Fatalf("a bad status is refused with the transmitter's answer: %d %s", code, errOut)
	}
}

func TestDeadLettersCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	dir := t.TempDir()
	srv := startChild(t, dir, "127.0.0.1:0")
	common := []string{"--url", srv.url, "--token-file", filepath.Join(dir, "admin.token")}
	_, out, _ := runCLI(t, "", append([]string{"stream", "create"}, common...)...)
	var cfg struct {
		StreamID string `json:"stream_id"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "", append([]string{"dead-letters", "list", cfg.StreamID}, common...)...)
	if code != 0 || !strings.Contains(out, `"dead_letters": []`) {
		t.Fatalf("list: %d %s", code, out)
	}
	code, out, _ = runCLI(t, "", append([]string{"dead-letters", "redrive", cfg.StreamID}, common...)...)
	if code != 0 || !strings.Contains(out, `"redriven": 0`) {
		t.Fatalf("redrive: %d %s", code, out)
	}
	code, _, errOut := runCLI(t, "", append([]string{"dead-letters", "show", cfg.StreamID, "nope"}, common...)...)
	if code != 1 || !strings.Contains(errOut, "404") {
		t.Fatalf("show unknown: %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "", append([]string{"dead-letters", "list", "unknownStream1"}, common...)...)
	if code != 1 || !strings.Contains(errOut, "404") {
		t.Fatalf("list of an unknown stream: %d %s", code, errOut)
	}
}

// syncBuffer is a bytes.Buffer safe for a child process writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startTool runs an ssfd subcommand as a child process and returns its combined output.
func startTool(t *testing.T, args ...string) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SSFD_TEST_MAIN=1")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return out
}

// TestReadmeTour drives the README's tour against one real `ssfd serve --dev`: a poll stream, an emit and its
// poll (steps 2–4), push and NATS delivery seen by the sink and follow tools (7–9), and an agent token refused by
// the demo resource server once its kill switch is pulled (18–20). Steps 13–17 (the issuer's CLI) are driven by
// TestIssuerCommandsAgainstARealServer, the receiver's (10–12) by the receiver tests.
func TestReadmeTour(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir := t.TempDir()
	srv := startChild(t, dir, "127.0.0.1:0")
	common := []string{"--url", srv.url, "--token-file", filepath.Join(dir, "admin.token")}
	code, out, errOut := runCLI(t, "", append([]string{"stream", "create", "--description", "my first stream"}, common...)...)
	var pollStream struct {
		StreamID string `json:"stream_id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &pollStream) != nil {
		t.Fatalf("stream create: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "", append([]string{"emit", "--type", "session-revoked", "--subject", `{"format":"email","email":"ada@example.com"}`,
		"--event", `{"initiating_entity":"admin","reason_admin":{"en":"laptop stolen"}}`}, common...)...); code != 0 {
		t.Fatalf("emit: %s", errOut)
	}
	if code, out, errOut := runCLI(t, "", append([]string{"poll", "--stream", pollStream.StreamID, "--ack"}, common...)...); code != 0 ||
		!strings.Contains(out, "laptop stolen") {
		t.Fatalf("poll: %d %s %s", code, out, errOut)
	}
	tourPushAndNATS(t, srv, common)
	tourKillSwitch(t, srv, dir, common)
}

// tourPushAndNATS: the README's push and NATS steps, with the sink and follow tools.
func tourPushAndNATS(t *testing.T, srv *child, common []string) {
	t.Helper()
	sink := startTool(t, "sink", "--addr", "127.0.0.1:0", "--auth", "Bearer sink-secret",
		"--jwks", srv.url+"/jwks.json", "--iss", srv.url, "--aud", "admin")
	waitFor(t, "the sink listens", srv, func() bool { return strings.Contains(sink.String(), "listening on http://") })
	out0 := sink.String()
	sinkAddr := strings.TrimSuffix(strings.Fields(out0[strings.Index(out0, "listening on http://")+len("listening on http://"):])[0], "/")
	if code, _, errOut := runCLI(t, "", append([]string{"stream", "create", "--delivery", "push",
		"--endpoint", "http://" + sinkAddr + "/push", "--auth-header", "Bearer sink-secret"}, common...)...); code != 0 {
		t.Fatalf("push stream: %s", errOut)
	}
	code, out, errOut := runCLI(t, "", append([]string{"stream", "create", "--delivery", "nats"}, common...)...)
	if code != 0 {
		t.Fatalf("nats stream: %s", errOut)
	}
	var natsStream struct {
		StreamID string `json:"stream_id"`
	}
	if err := json.Unmarshal([]byte(out), &natsStream); err != nil {
		t.Fatal(err)
	}
	natsURL := srv.natsURL(t)
	follow := startTool(t, "follow", "--stream", natsStream.StreamID, "--nats-url", natsURL)
	if code, _, errOut := runCLI(t, "", append([]string{"emit", "--type", "credential-change", "--subject", `{"format":"email","email":"ada@example.com"}`,
		"--event", `{"credential_type":"password","change_type":"update"}`}, common...)...); code != 0 {
		t.Fatalf("emit: %s", errOut)
	}
	waitFor(t, "the SET arrives over push", srv, func() bool { return strings.Contains(sink.String(), "credential-change") })
	waitFor(t, "the SET arrives over NATS", srv, func() bool { return strings.Contains(follow.String(), "credential-change") })
	if strings.Contains(sink.String(), `"err"`) {
		t.Fatalf("the sink refused a SET: %s", sink)
	}
}
