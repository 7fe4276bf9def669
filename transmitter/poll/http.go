package poll

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
	"github.com/ssfd/ssfd/transmitter"
)

// Register adds the poll endpoint POST <base>/ssf/poll/:stream_id, protected like the management API with
// ssf.read (spec/ssf.md PO-02).
func (s *Server) Register(e *echo.Echo, basePath string, tv transmitter.TokenVerifier) {
	e.POST(basePath+transmitter.PathPoll+"/:stream_id", s.handlePoll, transmitter.Authenticate(tv, transmitter.ScopeRead))
}

func (s *Server) handlePoll(c echo.Context) error {
	id, err := streams.ParseID(c.Param("stream_id"))
	if err != nil {
		return transmitter.NotFound()
	}
	body, err := transmitter.ReadBody(c)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	req, err := schemas.ParsePollRequest(body)
	if err != nil {
		return transmitter.BadRequest("%v", err) // RFC 8936 §2.5.1: 400 for an invalid poll request
	}
	p, _ := transmitter.PrincipalFrom(c.Request().Context())
	resp, err := s.Poll(c.Request().Context(), p, id, req)
	if err != nil {
		return err
	}
	return transmitter.JSON(c, http.StatusOK, resp)
}
