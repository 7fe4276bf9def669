package revocation

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
)

// ErrRevoked is the cause (context.Cause) of a Streaming request's context cancelled because its token was
// revoked while the request ran (spec/agent-auth.md §3.4: open streams are closed when a matching op arrives).
var ErrRevoked = errors.New("revocation: the access token was revoked")

type grantKey struct{}

// withVerdict stores an accepted token in ctx.
func withVerdict(ctx context.Context, v verdict) context.Context {
	return context.WithValue(ctx, grantKey{}, v)
}

func verdictFrom(ctx context.Context) (verdict, bool) {
	v, ok := ctx.Value(grantKey{}).(verdict)
	return v, ok && v.claims != nil
}

// ClaimsFrom returns the claims of the token a Guard accepted for the request of ctx.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	v, ok := verdictFrom(ctx)
	return v.claims, ok
}

// Degraded reports whether the token of the request of ctx was accepted while the revocation feed was stale
// (spec/agent-auth.md §3.5, §6.5): introspection vouched for it, or it carried no high-risk scope. Handlers
// should log it and may refuse sensitive operations themselves.
func Degraded(ctx context.Context) bool {
	v, _ := verdictFrom(ctx)
	return v.degraded
}

// Recheck checks the token of the request of ctx against the index again, for commit points before side
// effects in a long request (spec/agent-auth.md §3.5). It returns nil while the token stands and a *Denial once
// it is revoked; a ctx without an accepted token is refused like a request without one.
func (g *Guard) Recheck(ctx context.Context) error {
	v, ok := verdictFrom(ctx)
	if !ok {
		return missingCredentials("an access token is required")
	}
	switch reason := g.cfg.Index.Check(v.claims.Token(v.kid)); reason {
	case "":
		return nil
	case ReasonNotReady:
		return unavailable("the revocation status is not known yet")
	}
	return invalidToken(v.claims.Cnf != nil, DescriptionRevoked)
}

// Middleware refuses requests whose token Authorize refuses, answering with the Denial, and passes the others
// to next with the claims in the context (ClaimsFrom, Degraded).
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, d := g.authorize(r.Context(), g.present(r))
		if d != nil {
			d.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(withVerdict(r.Context(), v)))
	})
}

// Echo is Middleware for echo. A refusal is returned as the *Denial, which internal/server's error handler
// renders through HTTPStatus, HTTPHeader and HTTPBody (STYLE.md rule 9).
func (g *Guard) Echo() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			v, d := g.authorize(r.Context(), g.present(r))
			if d != nil {
				return d
			}
			c.SetRequest(r.WithContext(withVerdict(r.Context(), v)))
			return next(c)
		}
	}
}

// Streaming is Middleware for long-lived requests (SSE, streamed MCP responses, websockets): the request's
// context is also cancelled, with cause ErrRevoked, as soon as the index learns that the token is revoked, so
// the handler ends the stream (spec/agent-auth.md §3.4). For echo, wrap it with echo.WrapMiddleware.
func (g *Guard) Streaming(next http.Handler) http.Handler {
	return g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := verdictFrom(r.Context()) // Middleware admitted the request with its verdict
		revoked, stop := g.cfg.Index.Watch(v.claims.Token(v.kid))
		defer stop()
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		go func() {
			select {
			case <-revoked:
				cancel(ErrRevoked)
			case <-ctx.Done():
			}
		}()
		next.ServeHTTP(w, r.WithContext(ctx))
	}))
}
