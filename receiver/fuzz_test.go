package receiver_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
)

// FuzzPushBody: whatever a transmitter pushes, the endpoint answers 202 with an empty body, or 400/413 with an
// RFC 8935 error body and Content-Language; never a 5xx, never a panic. Only a 202 stores anything.
func FuzzPushBody(f *testing.F) {
	fx := newFixture(f)
	valid := signWith(f, fx.es, keys.TypeSET, claims(nil))
	f.Add([]byte(valid), "application/secevent+jwt")
	f.Add([]byte(signWith(f, fx.rs, keys.TypeSET, claims(map[string]any{"jti": "j2", "aud": []string{audience}}))), "")
	f.Add([]byte(valid[:len(valid)-3]), "application/secevent+jwt")
	f.Add([]byte("a.b.c"), "application/secevent+jwt; charset=utf-8")
	f.Add([]byte("{}"), "application/json")
	f.Add([]byte(strings.Repeat(".", 64)), "")
	db, err := bolt.Open(filepath.Join(f.TempDir(), "rx.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = db.Close() })
	r := receiver.New(db, receiver.NewDispatcher())
	if err := r.Add("tx"); err != nil {
		f.Fatal(err)
	}
	if err := r.SetVerifier("tx", fx.v); err != nil {
		f.Fatal(err)
	}
	e := echo.New()
	r.RegisterPush(e)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		before := r.Statuses()[0]
		req := httptest.NewRequest(http.MethodPost, receiver.PushPath+"tx", strings.NewReader(string(body)))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		after := r.Statuses()[0]
		switch rec.Code {
		case http.StatusAccepted:
			if rec.Body.Len() != 0 {
				t.Fatalf("a 202 with a body: %q", rec.Body)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var out schemas.SETError
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Err == "" || rec.Header().Get("Content-Language") == "" {
				t.Fatalf("%d without an RFC 8935 error body: %q", rec.Code, rec.Body)
			}
			if after.Accepted != before.Accepted {
				t.Fatalf("a refused push stored a SET")
			}
		default:
			t.Fatalf("answered %d to %q", rec.Code, body)
		}
	})
}
