package revocation_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/receiver/revocation"
)

// checkAPI posts body with headers in pairs to the check API and returns the status and decoded body.
func checkAPI(t *testing.T, srv *httptest.Server, method, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+"/api/v1/check", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%d %q is not JSON: %v", resp.StatusCode, raw, err)
	}
	return resp.StatusCode, out
}

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCheckAPI(t *testing.T) {
	f := newGuardFixture(t, nil)
	srv := httptest.NewServer(f.guard.CheckHandler())
	t.Cleanup(srv.Close)
	tok, jti := f.mint(t, nil)
	revoked, revokedJTI := f.mint(t, nil)
	applyOp(t, f.index, revocation.Op{Kind: revocation.OpRevokeJTI, JTI: revokedJTI})
	holder, _ := keys.Generate(keys.ES256)
	bound, _ := f.boundToken(t, holder)
	const rsURL = "https://rs.example/mcp/tools"

	t.Run("allows a valid token and names its client, subject, scope, jti and actors", func(t *testing.T) {
		status, out := checkAPI(t, srv, http.MethodPost, jsonBody(t, revocation.CheckRequest{Token: tok, Method: "GET", URL: rsURL}))
		if status != 200 || out["allow"] != true || out["client_id"] != guardAgentB || out["sub"] != "u-88213" ||
			out["scope"] != "invoices.read" || out["jti"] != jti {
			t.Fatalf("got %d %v", status, out)
		}
		if act, _ := out["act"].([]any); len(act) != 2 || act[0] != guardAgentB || act[1] != guardAgentA {
			t.Errorf("act %v", out["act"])
		}
	})
	t.Run("denies a revoked token with status, error and reason", func(t *testing.T) {
		status, out := checkAPI(t, srv, http.MethodPost, jsonBody(t, revocation.CheckRequest{Token: revoked}))
		if status != 200 || out["allow"] != false || out["status"] != float64(401) || out["error"] != "invalid_token" ||
			out["reason"] != "token revoked" || out["www_authenticate"] != revokedChallenge {
			t.Errorf("got %d %v", status, out)
		}
	})
	t.Run("checks a DPoP proof against the method and url of the body", func(t *testing.T) {
		proof := proofFor(t, holder, http.MethodPost, rsURL, bound, nil)
		req := revocation.CheckRequest{Token: bound, DPoP: proof, Method: "GET", URL: rsURL}
		if _, out := checkAPI(t, srv, http.MethodPost, jsonBody(t, req)); out["allow"] != false || out["error"] != "invalid_dpop_proof" {
			t.Errorf("wrong htm: %v", out)
		}
		req.Method = http.MethodPost
		if _, out := checkAPI(t, srv, http.MethodPost, jsonBody(t, req)); out["allow"] != true {
			t.Errorf("valid proof: %v", out)
		}
		if _, out := checkAPI(t, srv, http.MethodPost, jsonBody(t, revocation.CheckRequest{Token: bound})); out["allow"] != false {
			t.Errorf("bound token without proof: %v", out)
		}
	})
	t.Run("with an empty body checks the request's own headers and the forwarded request", func(t *testing.T) {
		if status, out := checkAPI(t, srv, http.MethodPost, "", "Authorization", "Bearer "+tok); status != 200 || out["allow"] != true {
			t.Errorf("bearer: %d %v", status, out)
		}
		proof := proofFor(t, holder, http.MethodDelete, "https://gw.example/v1/items/7", bound, nil)
		status, out := checkAPI(t, srv, http.MethodPost, "", "Authorization", "DPoP "+bound, "DPoP", proof,
			"X-Forwarded-Method", "DELETE", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "gw.example",
			"X-Forwarded-Uri", "/v1/items/7?force=1")
		if status != 200 || out["allow"] != true {
			t.Errorf("dpop: %d %v", status, out)
		}
		if _, out := checkAPI(t, srv, http.MethodPost, ""); out["allow"] != false || out["status"] != float64(401) {
			t.Errorf("no token: %v", out)
		}
		_, out = checkAPI(t, srv, http.MethodPost, "", "Authorization", "Bearer "+tok, "X-Forwarded-Uri", "/x?access_token=abc")
		if out["allow"] != false || out["error"] != "invalid_request" {
			t.Errorf("token in the forwarded query: %v", out)
		}
	})
	bad := []struct {
		name, method, body string
		status             int
		description        string
	}{
		{"answers bad JSON with 400", http.MethodPost, `{"token": `, 400, "malformed JSON at byte"},
		{"answers a token that is not a string with 400", http.MethodPost, `{"token": 5}`, 400, "token must not be a JSON number"},
		{"answers a JSON array with 400", http.MethodPost, `[1,2]`, 400, "the body must be a JSON object"},
		{"answers a missing token with 400", http.MethodPost, `{"url": "https://rs.example/"}`, 400, "token is required"},
		{"answers a relative url with 400", http.MethodPost, `{"token": "a.b.c", "url": "/x"}`, 400, "url must be an absolute"},
		{"answers a bad method with 400", http.MethodPost, `{"token": "a.b.c", "method": "GE T"}`, 400, "method is not"},
		{"answers a body over 64 KiB with 413", http.MethodPost, `{"token": "` + strings.Repeat("a", 65<<10) + `"}`, 413, "larger than"},
		{"answers GET with 405", http.MethodGet, "", 405, "use POST"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			status, out := checkAPI(t, srv, tc.method, tc.body)
			desc, _ := out["error_description"].(string)
			if status != tc.status || out["error"] != "invalid_request" || !strings.Contains(desc, tc.description) {
				t.Errorf("got %d %v, want %d with %q", status, out, tc.status, tc.description)
			}
		})
	}
}
