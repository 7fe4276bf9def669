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

func TestConfigExamplePassesConfigCheck(t *testing.T) {
	code, example, _ := runCLI(t, "", "config", "example")
	if code != 0 || !strings.Contains(example, "data_dir:") {
		t.Fatalf("example: %d", code)
	}
	if code, out, errOut := runCLI(t, example, "config", "check", "-"); code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("check of the example: %d %s %s", code, out, errOut)
	}
	bad := "http_addr: nowhere\nsigning_algorithms: [HS256]\npoll_timeout: 1h\n"
	code, _, errOut := runCLI(t, bad, "config", "check", "-")
	if code != 1 {
		t.Fatalf("check of a bad file: exit %d", code)
	}
	for _, field := range []string{"http_addr:", "signing_algorithms:", "poll_timeout:"} {
		if !strings.Contains(errOut, field) {
			t.Errorf("the problem with %s is not reported: %s", field, errOut)
		}
	}
}
