package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ssfd/ssfd/internal/config"
)

// buildFlags are the flags of `make build` and deploy/Dockerfile.
const buildFlags = `-trimpath -ldflags "-s -w -X main.version=${VERSION}"`

func TestDockerfileBuildsTheStaticBinaryOfMakeBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dockerfile, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dockerfile), "CGO_ENABLED=0 go build "+buildFlags) {
		t.Fatalf("deploy/Dockerfile does not build with %s", buildFlags)
	}
	for _, want := range []string{"USER nonroot", "distroless/static"} {
		if !strings.Contains(string(dockerfile), want) {
			t.Errorf("deploy/Dockerfile lacks %q", want)
		}
	}
	out := filepath.Join(t.TempDir(), "ssfd")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=deploy-test", "-o", out, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, msg)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary is dynamically linked; the distroless static image cannot run it")
		}
	}
	version, err := exec.Command(out, "version").Output()
	if err != nil || strings.TrimSpace(string(version)) != "ssfd deploy-test" {
		t.Fatalf("version stamp: %q %v", version, err)
	}
}

func TestDeploySampleConfigurationIsValid(t *testing.T) {
	cfg := config.Default()
	if err := cfg.LoadFile("../../deploy/ssfd.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("deploy/ssfd.yaml: %v", err)
	}
	rx := config.Default()
	rx.Dev = true // as the tour runs it
	if err := rx.LoadFile("../../deploy/receiver-dev.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := rx.Validate(); err != nil || len(rx.Receiver.Registrations) != 1 {
		t.Fatalf("deploy/receiver-dev.yaml: %v", err)
	}
	unit, err := os.ReadFile("../../deploy/ssfd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/ssfd serve --config /etc/ssfd/ssfd.yaml", "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=ssfd"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("deploy/ssfd.service lacks %q", want)
		}
	}
}

func TestDeployManifestsAreValidYAML(t *testing.T) {
	files, err := filepath.Glob("../../deploy/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("../../deploy/kubernetes/*.yaml")
	files = append(files, more...)
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	kinds, samples := map[string]bool{}, 0
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		for n := 0; ; n++ {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s document %d: %v", path, n, err)
			}
			if strings.Contains(path, "kubernetes") {
				if doc["apiVersion"] == nil || doc["kind"] == nil || doc["metadata"] == nil {
					t.Errorf("%s document %d lacks apiVersion, kind or metadata", path, n)
				}
				kinds[fmt.Sprint(doc["kind"])] = true
				data, _ := doc["data"].(map[string]any)
				if sample, ok := data["ssfd.yaml"].(string); ok && doc["kind"] == "ConfigMap" {
					samples++
					cfg := config.Default()
					if err := cfg.Load([]byte(sample)); err != nil {
						t.Errorf("the ConfigMap's ssfd.yaml: %v", err)
					} else if err := cfg.Validate(); err != nil {
						t.Errorf("the ConfigMap's ssfd.yaml: %v", err)
					}
				}
			}
		}
		f.Close()
	}
	if samples == 0 {
		t.Error("deploy/kubernetes has no ConfigMap with ssfd.yaml")
	}
	for _, k := range []string{"Deployment", "StatefulSet", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "NetworkPolicy"} {
		if !kinds[k] {
			t.Errorf("deploy/kubernetes has no %s", k)
		}
	}
}
