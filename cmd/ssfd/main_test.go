package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestMain lets crash tests run this test binary as the ssfd command: with SSFD_TEST_MAIN=1 it behaves like
// main, so a child process can be killed with SIGKILL like a real server.
func TestMain(m *testing.M) {
	if os.Getenv("SSFD_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// runCLI runs the CLI in process and returns its exit code, standard output and standard error.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "ssfd ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestServeRefusesABadConfiguration(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/ssfd.yaml"
	if err := os.WriteFile(file, []byte("http_addr: nowhere\npoll_tiemout: 5s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "", "serve", "--config", file, "--data-dir", dir)
	if code != 2 || !strings.Contains(errOut, "poll_tiemout") {
		t.Fatalf("a misspelt key: %d %q", code, errOut)
	}
	if err := os.WriteFile(file, []byte("http_addr: nowhere\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "", "serve", "--config", file, "--data-dir", dir, "--signing-alg", "HS256")
	if code != 2 || !strings.Contains(errOut, "http_addr") || !strings.Contains(errOut, "signing_algorithms") {
		t.Fatalf("every bad field is reported: %d %q", code, errOut)
	}
}
