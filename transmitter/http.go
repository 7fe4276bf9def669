package transmitter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/streams"
)

// MaxBodyBytes caps the body of management and intake requests (spec/ssf.md GO-12).
const MaxBodyBytes = 1 << 20

// Register adds the transmitter's routes to e: the metadata and JWKS (public), the SSF management API under the
// issuer's path (SSF 1.0 §8), and the intake API at /api/v1/events. Each handler is Parse → Execute → Render.
func (t *Transmitter) Register(e *echo.Echo, tv TokenVerifier) {
	read, manage, emit := Authenticate(tv, ScopeRead), Authenticate(tv, ScopeManage), Authenticate(tv, ScopeEmit)
	e.GET(t.MetadataPath(), t.handleMetadata)
	g := e.Group(t.BasePath())
	g.GET(PathJWKS, t.handleJWKS)
	g.POST(PathConfiguration, streamCall(t.CreateStream, http.StatusCreated), manage)
	g.GET(PathConfiguration, t.handleRead, read)
	g.PATCH(PathConfiguration, streamCall(t.UpdateStream, http.StatusOK), manage)
	g.PUT(PathConfiguration, streamCall(t.ReplaceStream, http.StatusOK), manage)
	g.DELETE(PathConfiguration, t.handleDelete, manage)
	g.GET(PathStatus, t.handleStatus, read)
	g.POST(PathStatus, t.handleSetStatus, manage)
	g.POST(escapeColon(PathAddSubject), bodyCall(t.AddSubject, http.StatusOK), manage) // 200, empty body (SJ-02)
	g.POST(escapeColon(PathRemoveSubject), bodyCall(t.RemoveSubject, http.StatusNoContent), manage)
	g.POST(PathVerification, bodyCall(t.Verify, http.StatusNoContent), manage)
	e.POST("/api/v1/events", t.handleEmit, emit)
	e.GET("/api/v1/streams/:stream_id/dead-letters", t.handleDeadLetters, read)
	e.GET("/api/v1/streams/:stream_id/dead-letters/:jti", t.handleDeadLetter, read)
	e.POST("/api/v1/streams/:stream_id/dead-letters/redrive", t.handleRedrive, manage)
	e.DELETE("/api/v1/streams/:stream_id/dead-letters", t.handlePurgeDeadLetters, manage)
}

// escapeColon keeps echo from reading ":add" in /ssf/subjects:add as a path parameter.
func escapeColon(path string) string {
	out := make([]byte, 0, len(path)+2)
	for i := 0; i < len(path); i++ {
		if path[i] == ':' {
			out = append(out, '\\')
		}
		out = append(out, path[i])
	}
	return string(out)
}

// ReadBody reads a request body of at most MaxBodyBytes; a larger one is a 413.
func ReadBody(c echo.Context) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: "request_too_large",
			Description: "the body is larger than 1 MiB"}
	}
	if err != nil {
		return nil, BadRequest("the body could not be read")
	}
	return body, nil
}

// JSON writes v with Cache-Control: no-store, as the SSF examples do (spec/ssf.md API-04).
func JSON(c echo.Context, status int, v any) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(status, v)
}

func principal(c echo.Context) Principal {
	p, _ := PrincipalFrom(c.Request().Context())
	return p
}

// queryStreamID reads the stream_id query parameter (GET config, DELETE config, GET status; spec/ssf.md API-06).
func queryStreamID(c echo.Context) (streams.ID, bool, error) {
	raw := c.QueryParam("stream_id")
	if raw == "" {
		return "", false, nil
	}
	id, err := streams.ParseID(raw)
	if err != nil {
		return "", true, NotFound()
	}
	return id, true, nil
}

func (t *Transmitter) handleMetadata(c echo.Context) error {
	return JSON(c, http.StatusOK, t.Metadata())
}

func (t *Transmitter) handleJWKS(c echo.Context) error {
	jwks, err := t.signer.JWKS()
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "application/jwk-set+json", jwks)
}

func (t *Transmitter) handleRead(c echo.Context) error {
	id, given, err := queryStreamID(c)
	if err != nil {
		return err
	}
	ctx, p := c.Request().Context(), principal(c)
	if !given {
		all, err := t.ListStreams(ctx, p)
		if err != nil {
			return err
		}
		out := make([]any, len(all))
		for i, s := range all {
			out[i] = s.Config
		}
		return JSON(c, http.StatusOK, out)
	}
	s, err := t.GetStream(ctx, p, id)
	if err != nil {
		return err
	}
	return JSON(c, http.StatusOK, s.Config)
}

func (t *Transmitter) handleDelete(c echo.Context) error {
	id, given, err := queryStreamID(c)
	if err != nil {
		return err
	}
	if !given {
		return BadRequest("stream_id is required in the query")
	}
	if err := t.DeleteStream(c.Request().Context(), principal(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (t *Transmitter) handleStatus(c echo.Context) error {
	id, given, err := queryStreamID(c)
	if err != nil {
		return err
	}
	if !given {
		return BadRequest("stream_id is required in the query")
	}
	st, err := t.Status(c.Request().Context(), principal(c), id)
	if err != nil {
		return err
	}
	return JSON(c, http.StatusOK, st)
}

func (t *Transmitter) handleSetStatus(c echo.Context) error {
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	st, err := t.SetStatus(c.Request().Context(), principal(c), body)
	if err != nil {
		return err
	}
	return JSON(c, http.StatusOK, st)
}

// streamCall is the handler of an operation that takes the request body and answers with the stream's
// configuration: create (201), update and replace (200).
func streamCall(call func(context.Context, Principal, []byte) (*streams.Stream, error), status int) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := ReadBody(c)
		if err != nil {
			return err
		}
		s, err := call(c.Request().Context(), principal(c), body)
		if err != nil {
			return err
		}
		return JSON(c, status, s.Config)
	}
}

// bodyCall is the handler of an operation that takes the request body and answers with an empty body.
func bodyCall(call func(context.Context, Principal, []byte) error, status int) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := ReadBody(c)
		if err != nil {
			return err
		}
		if err := call(c.Request().Context(), principal(c), body); err != nil {
			return err
		}
		return c.NoContent(status)
	}
}

func (t *Transmitter) handleEmit(c echo.Context) error {
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	events, err := ParseEvents(body)
	if err != nil {
		return err
	}
	accepted, err := t.Emit(c.Request().Context(), events)
	if err != nil {
		return err
	}
	return JSON(c, http.StatusAccepted, map[string]any{"accepted": accepted})
}

func (t *Transmitter) handleDeadLetters(c echo.Context) error {
	id, err := streams.ParseID(c.Param("stream_id"))
	if err != nil {
		return NotFound()
	}
	list, err := t.DeadLetters(c.Request().Context(), principal(c), id)
	if err != nil {
		return err
	}
	for i := range list {
		list[i].SET = "" // the list is an overview; GET .../dead-letters/{jti} shows one with its SET
	}
	return JSON(c, http.StatusOK, map[string]any{"stream_id": id, "dead_letters": list})
}

func (t *Transmitter) handleDeadLetter(c echo.Context) error {
	id, err := streams.ParseID(c.Param("stream_id"))
	if err != nil {
		return NotFound()
	}
	list, err := t.DeadLetters(c.Request().Context(), principal(c), id)
	if err != nil {
		return err
	}
	for _, d := range list {
		if d.JTI == c.Param("jti") {
			return JSON(c, http.StatusOK, d)
		}
	}
	return &Error{Status: http.StatusNotFound, Code: "not_found", Description: "no dead letter with this jti"}
}

// jtiList reads {"jtis": [...]} from a redrive body or the repeated jti query parameter of a purge.
func jtiList(c echo.Context) ([]string, error) {
	if jtis := c.QueryParams()["jti"]; len(jtis) > 0 {
		return jtis, nil
	}
	body, err := ReadBody(c)
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		return nil, err
	}
	var req struct {
		JTIs []string `json:"jtis"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, BadRequest("the body must be {\"jtis\": [...]} (empty for all)")
	}
	return req.JTIs, nil
}

func (t *Transmitter) handleRedrive(c echo.Context) error {
	return t.handleDeadLetterChange(c, t.Redrive, "redriven")
}

func (t *Transmitter) handlePurgeDeadLetters(c echo.Context) error {
	return t.handleDeadLetterChange(c, t.PurgeDeadLetters, "purged")
}

func (t *Transmitter) handleDeadLetterChange(c echo.Context,
	change func(context.Context, Principal, streams.ID, []string) (int, error), verb string) error {
	id, err := streams.ParseID(c.Param("stream_id"))
	if err != nil {
		return NotFound()
	}
	jtis, err := jtiList(c)
	if err != nil {
		return err
	}
	n, err := change(c.Request().Context(), principal(c), id, jtis)
	if err != nil {
		return err
	}
	return JSON(c, http.StatusOK, map[string]any{"stream_id": id, verb: n})
}
