package issuer_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/storage/bolt"
)

// TestAStoreOutOfReachAnswers503: when the store cannot be reached and the issuer was told how to recognize
// that, a token request answers 503 temporarily_unavailable with Retry-After; without it, 500 server_error.
func TestAStoreOutOfReachAnswers503(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []issuer.Option
		status int
		code   string
	}{
		{"recognized", []issuer.Option{issuer.WithUnavailable(func(err error) bool { return errors.Is(err, issuer.ErrClosed) })},
			http.StatusServiceUnavailable, issuer.CodeTemporarilyUnavailable},
		{"not recognized", nil, http.StatusInternalServerError, issuer.CodeServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := bolt.Open(filepath.Join(t.TempDir(), "ssfd.db"))
			if err != nil {
				t.Fatal(err)
			}
			_ = db.Close() // the store is out of reach: every call fails
			ring, err := keys.NewRing(keys.ES256)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(nil)
			is, err := issuer.New("http://"+srv.Listener.Addr().String(), db, ring, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			e := echo.New()
			is.Register(e, func(next echo.HandlerFunc) echo.HandlerFunc { return next })
			srv.Config.Handler = e
			srv.Start()
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+issuer.PathToken,
				strings.NewReader(url.Values{"grant_type": {issuer.GrantClientCredentials}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("agent", "secret")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error string `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.status || body.Error != tc.code {
				t.Fatalf("token request with the store down: %d %q, want %d %q", resp.StatusCode, body.Error, tc.status, tc.code)
			}
			if tc.status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				t.Fatal("a 503 without Retry-After")
			}
		})
	}
}
