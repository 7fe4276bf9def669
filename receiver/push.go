package receiver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/schemas"
)

// PushPath is the path prefix of the push endpoints: PushPath + <registration name> (DESIGN.md "HTTP surface").
const PushPath = "/receiver/push/"

// MaxPushBody bounds a pushed SET; a larger body is answered 413.
const MaxPushBody = 1 << 20

// RegisterPush adds the RFC 8935 push endpoint POST /receiver/push/:name to e.
func (r *Receiver) RegisterPush(e *echo.Echo) {
	e.POST(PushPath+":name", r.handlePush)
}

// handlePush answers one pushed SET (RFC 8935 §2): 202 with an empty body when the SET is stored (a replay
// too, VAL-12), 400 with the RFC 8935 error body and Content-Language when it is refused, 404 for an unknown
// registration, 413 for a body over MaxPushBody, and 503 when it could not be checked or stored now (the
// transmitter's JWKS could not be fetched, or storage failed): the transmitter retries.
func (r *Receiver) handlePush(c echo.Context) error {
	name := c.Param("name")
	b, err := r.binding(name)
	if err != nil {
		return pushError(c, http.StatusNotFound, schemas.ErrInvalidRequest, "no receiver registration is named "+name)
	}
	if want := b.pushAuth.Load(); want != nil && *want != "" && !sameSecret(c.Request().Header.Get("Authorization"), *want) {
		return r.refuse(c, b, http.StatusBadRequest, schemas.ErrAuthenticationFailed,
			"the Authorization header is missing or is not the one agreed for this stream")
	}
	if ct := c.Request().Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/secevent+jwt" {
			return r.refuse(c, b, http.StatusBadRequest, schemas.ErrInvalidRequest,
				"Content-Type must be application/secevent+jwt (RFC 8935 §2)")
		}
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, MaxPushBody+1))
	if err != nil {
		return pushError(c, http.StatusBadRequest, schemas.ErrInvalidRequest, "the request body could not be read")
	}
	if len(body) > MaxPushBody {
		return r.refuse(c, b, http.StatusRequestEntityTooLarge, schemas.ErrInvalidRequest, "the SET is larger than 1 MiB")
	}
	ctx := c.Request().Context()
	if b.verifier.Load() == nil {
		wctx, cancel := context.WithTimeout(ctx, r.setUp)
		err := r.WaitReady(wctx, name)
		cancel()
		if err != nil {
			c.Response().Header().Set("Retry-After", "5")
			return pushError(c, http.StatusServiceUnavailable, schemas.ErrInvalidRequest, "the stream of "+name+" is not set up yet")
		}
	}
	err = r.Receive(ctx, name, string(body))
	var ve *VerifyError
	switch {
	case err == nil:
		return c.NoContent(http.StatusAccepted)
	case errors.As(err, &ve):
		return pushError(c, http.StatusBadRequest, ve.Code, ve.Description)
	default:
		r.log.Error("pushed SET could not be taken now", "registration", name, "err", err)
		c.Response().Header().Set("Retry-After", "5")
		return pushError(c, http.StatusServiceUnavailable, schemas.ErrInvalidRequest,
			"the SET could not be verified or stored now; retry")
	}
}

// refuse counts a push refused before its SET was verified, so that the status shows it, and answers it.
func (r *Receiver) refuse(c echo.Context, b *binding, status int, code schemas.ErrorCode, desc string) error {
	b.count(func(s *Status) { s.Rejected[code]++ })
	r.obs.SETReceived(b.name, string(code))
	return pushError(c, status, code, desc)
}

// pushError writes an RFC 8935 §2.3 error body. The descriptions are in English (spec/ssf.md PU-21).
func pushError(c echo.Context, status int, code schemas.ErrorCode, desc string) error {
	c.Response().Header().Set("Content-Language", "en")
	return c.JSON(status, schemas.SETError{Err: code, Description: desc})
}

// sameSecret compares two header values in constant time, whatever their lengths.
func sameSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
