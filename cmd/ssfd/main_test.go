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
