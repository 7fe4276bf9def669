package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestAStoreOutOfReachIsA503: errors of a store briefly out of reach (NATS reconnecting, a stream without a
// leader, a store call out of time) answer 503 with Retry-After; any other error stays a 500 without its text.
func TestAStoreOutOfReachIsA503(t *testing.T) {
	e := echo.New()
	handle := errorHandler(slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("jetstream: log revoke: %w", nats.ErrTimeout), http.StatusServiceUnavailable},
		{fmt.Errorf("read: %w", nats.ErrNoResponders), http.StatusServiceUnavailable},
		{fmt.Errorf("read: %w", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}), http.StatusServiceUnavailable},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), http.StatusServiceUnavailable},
		{fmt.Errorf("publish: %w", nats.ErrConnectionReconnecting), http.StatusServiceUnavailable},
		{fmt.Errorf("read: %w", &jetstream.APIError{Code: 500, ErrorCode: 10009, Description: "not leader"}), http.StatusServiceUnavailable},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	} {
		rec := httptest.NewRecorder()
		handle(tc.err, e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), rec))
		if rec.Code != tc.want {
			t.Errorf("%v: status %d, want %d", tc.err, rec.Code, tc.want)
		}
		if tc.want == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%v: a 503 without Retry-After", tc.err)
		}
		if tc.want == http.StatusInternalServerError && rec.Body.String() != `{"error":"server_error","error_description":"an internal error occurred"}`+"\n" {
			t.Errorf("a 500 says %s", rec.Body)
		}
	}
}
