package server

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	sjs "github.com/ssfd/ssfd/storage/jetstream"

	"github.com/labstack/echo/v4"
)

// protocolError is what every role's typed errors implement (transmitter.Error and its kin): the status, extra
// headers and the JSON body of a protocol error (STYLE.md rule 9).
type protocolError interface {
	HTTPStatus() int
	HTTPHeader() http.Header
	HTTPBody() any
}

// errorHandler renders protocol errors as they are, echo's own errors (unknown route, wrong method, body too
// large) with an OAuth-style body, and anything else as a 500 whose cause is logged with the request id and
// never sent to the client.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		var pe protocolError
		var he *echo.HTTPError
		switch {
		case errors.As(err, &pe):
			for k, vs := range pe.HTTPHeader() {
				for _, v := range vs {
					c.Response().Header().Add(k, v)
				}
			}
			_ = writeError(c, pe.HTTPStatus(), pe.HTTPBody())
		case errors.As(err, &he):
			code := strings.ReplaceAll(strings.ToLower(http.StatusText(he.Code)), " ", "_")
			_ = writeError(c, he.Code, map[string]string{"error": code})
		case sjs.Unavailable(err):
			log.Warn("request failed: the store is unavailable", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
				"method", c.Request().Method, "path", c.Path(), "err", err)
			c.Response().Header().Set("Retry-After", "1")
			_ = writeError(c, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable",
				"error_description": "storage is unavailable for a moment; try again"})
		default:
			log.Error("request failed", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
				"method", c.Request().Method, "path", c.Path(), "err", err)
			_ = writeError(c, http.StatusInternalServerError,
				map[string]string{"error": "server_error", "error_description": "an internal error occurred"})
		}
	}
}

func writeError(c echo.Context, status int, body any) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	if c.Request().Method == http.MethodHead {
		return c.NoContent(status)
	}
	return c.JSON(status, body)
}
