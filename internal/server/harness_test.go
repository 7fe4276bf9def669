package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/server"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
)

// TestMain runs the package's tests and benchmarks with the collector target ssfd serve runs with.
func TestMain(m *testing.M) {
	server.TuneGC()
	os.Exit(m.Run())
}

// harness is a real ssfd server on loopback ports with a bbolt file and an embedded NATS server in a temporary
// directory, and a client that speaks SSF to it over HTTP.
type harness struct {
	t      testing.TB
	srv    *server.Server
	base   string
	issuer string
	token  string
	client *receiver.Client
}

func newHarness(t testing.TB, change ...func(*config.Config)) *harness {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NATSListen = "127.0.0.1:0"
	cfg.Dev = true
	cfg.MinVerificationInterval = 0
	cfg.PollTimeout = 2 * time.Second
	for _, f := range change {
		f(&cfg)
	}
	srv := startServer(t, cfg)
	var tok string
	if cfg.Dev {
		raw, err := os.ReadFile(srv.AdminTokenPath())
		if err != nil {
			t.Fatal(err)
		}
		tok = strings.TrimSpace(string(raw))
	} else {
		tok = cfg.Tokens[0].Value
	}
	h := &harness{t: t, srv: srv, base: "http://" + srv.Addr(), issuer: srv.Issuer(), token: tok}
	if ix := srv.RevocationIndex(); ix != nil {
		for deadline := time.Now().Add(10 * time.Second); !ix.Ready(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the revocation index was not restored within 10s")
			}
		}
	}
	client, err := receiver.Discover(context.Background(), h.issuer, receiver.WithToken(h.token))
	if err != nil {
		t.Fatal(err)
	}
	h.client = client
	return h
}

// startServer validates cfg, starts a server with it and shuts it down when t ends.
func startServer(t testing.TB, cfg config.Config) *server.Server {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}

// call sends a request with the admin token (or the given one; "" sends none) and returns status, headers, body.
func (h *harness) call(method, path, token string, body any) (int, http.Header, []byte) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = h.base + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// createPollStream creates a poll stream requesting every event and returns its configuration.
func (h *harness) createPollStream() *schemas.StreamConfiguration {
	h.t.Helper()
	cfg, err := h.client.CreateStream(context.Background(), receiver.StreamRequest{
		EventsRequested: []schemas.EventType{schemas.EventSessionRevoked, schemas.EventCredentialChange},
		Description:     "conformance test",
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return cfg
}

// poll sends one poll request to the stream's endpoint.
func (h *harness) poll(cfg *schemas.StreamConfiguration, req schemas.PollRequest) *schemas.PollResponse {
	h.t.Helper()
	resp, err := h.client.Poll(context.Background(), cfg.Delivery.EndpointURL, req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// verifier checks SETs as a receiver would, against the transmitter's published JWKS.
func (h *harness) verifier(aud string) *receiver.Verifier {
	h.t.Helper()
	jwks, err := keys.NewRemoteJWKS(h.client.Metadata().JWKSURI)
	if err != nil {
		h.t.Fatal(err)
	}
	v, err := receiver.NewVerifier(jwks, h.issuer, []string{aud}, receiver.WithClockSkew(0))
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

// checkVerificationSET applies the conformance suite's SET checks to a verification SET (spec/ssf.md §17.2).
func (h *harness) checkVerificationSET(cfg *schemas.StreamConfiguration, token, wantState string) *schemas.SET {
	h.t.Helper()
	header, _, err := keys.Decode(token)
	if err != nil {
		h.t.Fatal(err)
	}
	var hdr struct {
		Typ string `json:"typ"`
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(header, &hdr); err != nil || hdr.Typ != "secevent+jwt" || hdr.Kid == "" {
		h.t.Fatalf("SET-01/SET-03: header %s", header)
	}
	set, err := h.verifier(cfg.Audience[0]).Verify(context.Background(), token)
	if err != nil {
		h.t.Fatalf("the verification SET does not verify: %v", err)
	}
	if set.Event.Type != schemas.EventVerification {
		h.t.Fatalf("VF-10: event %s", set.Event.Type)
	}
	if set.Subject.String() != `{"format":"opaque","id":"`+cfg.StreamID+`"}` {
		h.t.Fatalf("VF-12: sub_id %s", set.Subject)
	}
	p, _, err := set.Event.Decode()
	if err != nil || p.(*schemas.Verification).State != wantState {
		h.t.Fatalf("VF-04: state %v %v, want %q", p, err, wantState)
	}
	if set.IssuedAt.Time().After(time.Now()) {
		h.t.Fatal("iat is in the future")
	}
	return set
}

// newHarnessWithIssuerPath runs a server whose issuer has a path, on a port reserved beforehand.
func newHarnessWithIssuerPath(t *testing.T, path string) *harness {
	t.Helper()
	addr := freeAddr(t)
	return newHarness(t, func(c *config.Config) {
		c.HTTPAddr = addr
		c.Issuer = "http://" + addr + path
	})
}
