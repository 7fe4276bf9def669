package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	sjs "github.com/ssfd/ssfd/storage/jetstream"

	"github.com/labstack/echo/v4"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/transmitter"
)

// setUpIssuer starts the built-in token issuer: its own access-token key ring (keys/issuer-<alg>.json, separate
// from the SET keys), the bbolt store, and the transmitter's intake as its EventSink. Its routes go on e, the
// management API behind ScopeAdmin.
func (s *Server) setUpIssuer(e *echo.Echo, static *transmitter.StaticTokens) (transmitter.TokenVerifier, error) {
	o := s.cfg.OAuth
	if o.Disabled {
		return static, nil
	}
	alg, err := keys.ParseAlgorithm(o.SigningAlgorithm)
	if err != nil {
		return nil, err
	}
	ring, rotate, err := s.rings("issuer-"+string(alg), alg)
	if err != nil {
		return nil, fmt.Errorf("server: access-token keys: %w", err)
	}
	reserved := []string{}
	for _, t := range s.cfg.Tokens {
		reserved = append(reserved, t.ClientID)
	}
	if s.cfg.Dev {
		reserved = append(reserved, "admin")
	}
	s.issuerKeys = ring
	s.issuer, err = issuer.New(s.cfg.IssuerURL(), s.issuerStore, ring, issuer.WithLogger(s.log), issuer.WithEventSink(issuerSink{s.tx}),
		issuer.WithReservedClientIDs(reserved...), issuer.WithKeyRotation(rotate), issuer.WithOpPublisher(opPublisher{s.revBus}),
		issuer.WithObserver(s.metrics.ObserveToken()), issuer.WithUnavailable(sjs.Unavailable),
		issuer.WithConfig(issuer.Config{AccessTokenTTL: o.AccessTokenTTL, DelegatedTokenTTL: o.DelegatedTokenTTL,
			SessionTTL: o.SessionTTL, MaxDelegationDepth: o.MaxDelegationDepth, RequireDPoP: o.RequireDPoP}))
	if err != nil {
		return nil, err
	}
	tv := tokenVerifiers{static, issuerTokens{is: s.issuer, audience: s.cfg.IssuerURL()}}
	s.issuer.Register(e, transmitter.Authenticate(tv, issuer.ScopeAdmin))
	return tv, nil
}

// TokenIssuer returns the built-in token issuer, nil when it is disabled.
func (s *Server) TokenIssuer() *issuer.Issuer { return s.issuer }

// issuerSink hands the issuer's revocation events to the transmitter's intake.
type issuerSink struct{ tx *transmitter.Transmitter }

// Send routes and queues every event; it returns once they are durably queued for every stream that asked.
func (k issuerSink) Send(ctx context.Context, events []issuer.Event) error {
	evs := make([]transmitter.Event, 0, len(events))
	for _, ev := range events {
		e, err := transmitter.NewEventFor(ev.Subject, ev.Payload, ev.Txn)
		if err != nil {
			return err
		}
		evs = append(evs, e)
	}
	_, err := k.tx.Emit(ctx, evs)
	return err
}

// issuerTokens accepts the issuer's access tokens on the SSF management API when they are addressed to the
// transmitter (aud = its issuer URL): the stream then belongs to the token's client.
type issuerTokens struct {
	is       *issuer.Issuer
	audience string
}

// VerifyToken checks an issuer token and returns its client and scopes.
func (it issuerTokens) VerifyToken(ctx context.Context, token string) (transmitter.Principal, error) {
	c, err := it.is.VerifyAccessToken(ctx, token)
	if err != nil {
		if errors.Is(err, issuer.ErrInvalidToken) {
			return transmitter.Principal{}, transmitter.ErrInvalidToken
		}
		return transmitter.Principal{}, err
	}
	if !slices.Contains(c.Audience, it.audience) {
		return transmitter.Principal{}, transmitter.ErrInvalidToken
	}
	if c.Cnf != nil {
		return transmitter.Principal{}, transmitter.ErrInvalidToken // DPoP-bound tokens need a proof the API does not check
	}
	return transmitter.Principal{ClientID: c.ClientID, Scopes: c.Scopes()}, nil
}

// tokenVerifiers tries each verifier in turn: the first that knows the token decides.
type tokenVerifiers []transmitter.TokenVerifier

// VerifyToken returns the principal of the first verifier that accepts token.
func (tvs tokenVerifiers) VerifyToken(ctx context.Context, token string) (transmitter.Principal, error) {
	for _, tv := range tvs {
		p, err := tv.VerifyToken(ctx, token)
		if err == nil || !errors.Is(err, transmitter.ErrInvalidToken) {
			return p, err
		}
	}
	return transmitter.Principal{}, transmitter.ErrInvalidToken
}

// outboxRetry is how often the issuer retries CAEP events the transmitter could not take.
const outboxRetry = 5 * time.Second
