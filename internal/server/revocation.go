package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/internal/metrics"
	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/receiver/revocation"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/transmitter"
)

// PathKillSwitch is the kill-switch API.
const PathKillSwitch = "/api/v1/killswitch"

// setUpRevocation opens the revocation streams on NATS and builds this process's revocation index, which
// follows them once started; the issuer publishes its ops there.
func (s *Server) setUpRevocation() error {
	bus, err := natsbus.OpenRevocations(context.Background(), s.nc, s.natsReplicas(), revocation.DefaultRetention)
	if err != nil {
		return err
	}
	s.revBus, s.revIndex = bus, revocation.NewIndex()
	return nil
}

// startRevocation follows the revocation streams into the index (ready once everything stored at start was
// applied; /readyz says so) and sweeps expired entries. Each applied op is acknowledged on NATS for kill switches
// that wait.
func (s *Server) startRevocation(ctx context.Context) {
	name := ackName("ssfd")
	lag := s.metrics.WatchRevocation(s.revIndex, func() bool { _, stale := s.feedStale(); return stale }, s.revRefused.Load)
	s.workers.Add(2)
	go func() {
		defer s.workers.Done()
		followWithRetry(ctx, func(ctx context.Context) error { return s.follow(ctx, name, lag) },
			func(err error, wait time.Duration) {
				s.log.Error("revocation feed stopped; following again", "err", err, "in", wait)
			})
	}()
	go func() {
		defer s.workers.Done()
		s.revIndex.RunSweeper(ctx.Done(), time.Minute)
	}()
	if s.issuer != nil {
		s.workers.Add(1)
		go func() {
			defer s.workers.Done()
			s.publishHeartbeats(ctx, name)
		}()
	}
}

// followWithRetry runs follow until ctx is done, again after each failure with a backoff from 1 s to 1 min,
// reset after a run that lasted longer than the backoff cap: the replay is idempotent, and until it catches up the
// index stays as it was (not ready on a first start: fail closed).
func followWithRetry(ctx context.Context, follow func(context.Context) error, failed func(error, time.Duration)) {
	const maxWait = time.Minute
	wait := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		err := follow(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		if time.Since(start) > maxWait {
			wait = time.Second
		}
		failed(err, wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWait)
	}
}

// The heartbeat of the revocation feed: the issuer's process publishes one every HeartbeatInterval, and a
// resource server that saw one takes the feed for stale once the newest is older than HeartbeatStale.
const (
	HeartbeatInterval = 5 * time.Second
	HeartbeatStale    = 30 * time.Second
)

// publishHeartbeats puts a heartbeat op on the feed now and every HeartbeatInterval until ctx is done.
func (s *Server) publishHeartbeats(ctx context.Context, name string) {
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	for {
		now := time.Now()
		op := revocation.Op{ID: "heartbeat " + name + " " + strconv.FormatInt(now.UnixNano(), 10), Kind: revocation.OpHeartbeat,
			At: now, ExpiresAt: now.Add(time.Minute)}
		if data, err := json.Marshal(op); err == nil {
			if err := s.revBus.Publish(ctx, "", op.ID, data, false); err != nil && ctx.Err() == nil {
				s.log.Warn("revocation heartbeat not published", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeatStale reports a feed whose heartbeats stopped, once one was seen.
func heartbeatStale(ix *revocation.Index) (string, bool) { return heartbeatStaleAt(ix, time.Now()) }

// heartbeatStaleAt is heartbeatStale at now.
func heartbeatStaleAt(ix *revocation.Index, now time.Time) (string, bool) {
	hb := ix.LastHeartbeat()
	if hb.IsZero() || now.Sub(hb) <= HeartbeatStale {
		return "", false
	}
	return fmt.Sprintf("no heartbeat on the revocation feed for %s", now.Sub(hb).Round(time.Second)), true
}

// applyFeedOp decodes one op of the revocation feed and applies it to ix.
func applyFeedOp(ix *revocation.Index, data []byte) (revocation.Op, error) {
	var op revocation.Op
	if err := json.Unmarshal(data, &op); err != nil {
		return op, fmt.Errorf("the op is not JSON: %w", err)
	}
	return op, ix.Apply(op)
}

// follow applies the revocation feed to the index until ctx is done or the feed fails.
func (s *Server) follow(ctx context.Context, name string, lag *prometheus.HistogramVec) error {
	return s.revBus.Follow(ctx, func(data []byte) {
		op, err := applyFeedOp(s.revIndex, data)
		if err != nil {
			s.revRefused.Add(1)
			s.log.Warn("revocation op refused", "op_id", op.ID, "err", err)
			return
		}
		if op.Kind == revocation.OpHeartbeat {
			return
		}
		s.revBus.Ack(name, op.ID)
		if s.issuer != nil && s.clustered() {
			s.issuer.WakeOutbox() // the op may have been recorded on another replica: this one may run the outbox
		}
		if op.Revokes() && !op.DecidedAt.IsZero() && s.revIndex.Ready() {
			metrics.ObserveApplyLag(lag, "nats", time.Since(op.DecidedAt))
		}
	}, func() {
		s.revIndex.SetReady()
		s.log.Info("revocation index restored", "entries", s.revIndex.Len())
	})
}

// issuerProofs remembers the check API's DPoP proofs in the issuer's store, shared by every replica.
type issuerProofs struct{ store issuer.Store }

// Remember records key with UseOnce; a replay is not fresh.
func (p issuerProofs) Remember(ctx context.Context, key string, until time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	switch err := p.store.UseOnce(ctx, key, until); {
	case errors.Is(err, issuer.ErrReplay):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// setUpCheckAPI mounts POST /api/v1/check (spec/agent-auth.md §3.3 item 4) when check audiences are
// configured: a guard over this process's index and the issuer's keys. It takes the token to check in its
// body or in the forwarded Authorization header, so it is meant for a gateway on a network the operator controls.
func (s *Server) setUpCheckAPI(e *echo.Echo) error {
	rc := s.cfg.Revocation
	if len(rc.CheckAudiences) == 0 || s.issuer == nil {
		return nil
	}
	gc := revocation.GuardConfig{Issuer: s.issuer.URL(), Audiences: rc.CheckAudiences,
		Keys: s.issuerKeys, Index: s.revIndex, HighRiskScopes: rc.HighRiskScopes,
		Stale: s.feedStale, Observe: s.metrics.ObserveCheck()}
	if s.clustered() { // a proof checked by one replica is refused by every other
		gc.SharedProofs = issuerProofs{s.issuerStore}
	}
	g, err := revocation.NewGuard(gc)
	if err != nil {
		return err
	}
	secret, err := config.ValueOrFile(rc.CheckToken, rc.CheckTokenFile)
	if err != nil {
		return fmt.Errorf("server: revocation.check_token_file: %w", err)
	}
	want := sha256.Sum256([]byte(secret))
	e.POST(PathCheck, echo.WrapHandler(g.CheckHandler()), func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			got := sha256.Sum256([]byte(c.Request().Header.Get(CheckTokenHeader)))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				return &transmitter.Error{Status: http.StatusUnauthorized, Code: "unauthorized",
					Description: "send the gateway's secret in " + CheckTokenHeader}
			}
			return next(c)
		}
	})
	return nil
}

// CheckTokenHeader carries the gateway's secret to the check API.
const CheckTokenHeader = "X-SSFD-Check-Token"

// PathCheck is the check API for gateways.
const PathCheck = "/api/v1/check"

// feedStale reports whether a revocation feed of this process is stale, and why (spec/agent-auth.md §6.5): NATS
// disconnected, or a receiver registration whose stream is not enabled, whose transmitter reported a problem, or
// whose verification is overdue (no verification event within twice its interval).
func (s *Server) feedStale() (string, bool) {
	if !s.nc.IsConnected() {
		return "NATS is disconnected", true
	}
	if s.revIndex != nil {
		if reason, stale := heartbeatStale(s.revIndex); stale {
			return reason, true
		}
	}
	if s.rcv == nil {
		return "", false
	}
	intervals := map[string]time.Duration{}
	for _, g := range s.cfg.Receiver.Registrations {
		intervals[g.Name] = cmp.Or(g.VerifyInterval, time.Hour)
	}
	for _, st := range s.rcv.Statuses() {
		switch {
		case st.StreamStatus != "" && st.StreamStatus != schemas.StatusEnabled:
			return "receiver registration " + st.Name + ": stream " + string(st.StreamStatus), true
		case st.Error != "":
			return "receiver registration " + st.Name + ": " + st.Error, true
		case !st.LastVerificationRequested.IsZero() && time.Since(st.LastVerification) > 2*intervals[st.Name] &&
			time.Since(st.LastVerificationRequested) > intervals[st.Name]:
			return "receiver registration " + st.Name + ": verification overdue", true
		}
	}
	return "", false
}

// applyAtIssuer records a received op at the built-in issuer too (spec/agent-auth.md §4.2, "issuer action"): the
// nodes it matches are revoked, so no refresh token or exchange mints from them again. The issuer sends no CAEP
// event for it (SourceReceived), so nothing loops back to the transmitter it came from.
func (s *Server) applyAtIssuer(ctx context.Context, op revocation.Op) error {
	if s.issuer == nil {
		return nil
	}
	_, err := s.issuer.Revoke(ctx, issuer.Op{ID: "received " + op.ID, Kind: issuer.OpKind(op.Kind), JTI: op.JTI, SID: op.SID,
		Key: issuer.MarkKey{Kind: issuer.MarkKind(op.Key.Kind), Value: op.Key.Value}, At: op.At, ExpiresAt: op.ExpiresAt,
		Tenant: op.Tenant, Initiator: "system", Reason: "received " + causeOf(op), Source: issuer.SourceReceived})
	var oe *issuer.Error
	if errors.As(err, &oe) {
		s.log.Warn("a received revocation could not be recorded at the issuer", "op_id", op.ID, "err", err)
		return nil // an op the issuer refuses (too long a value) cannot be helped by a retry
	}
	return err
}

// causeOf names the SET an op came from, for the issuer's log.
func causeOf(op revocation.Op) string {
	if op.Cause == nil {
		return "revocation"
	}
	return op.Cause.EventType + " from " + op.Cause.Issuer
}

// ackName names this process in revocation acknowledgements: the role, the host and a random suffix, so that
// replicas listening on the same address are counted apart.
func ackName(role string) string { return role + "@" + instanceName() }

// RevocationIndex returns this process's revocation index.
func (s *Server) RevocationIndex() *revocation.Index { return s.revIndex }

// opPublisher publishes the issuer's ops on the revocation streams.
type opPublisher struct{ bus *natsbus.RevocationBus }

// PublishOp publishes op as JSON with its id as Nats-Msg-Id. Resource servers need the target, times and
// tenant only: the nodes a cascade revoked (which can be thousands) and the subject stay in the issuer's log, so
// an op always fits a NATS message.
func (p opPublisher) PublishOp(ctx context.Context, op issuer.Op) error {
	op.Nodes, op.Subject = nil, nil
	data, err := json.Marshal(op)
	if err != nil {
		return err
	}
	keyOp := op.Kind == issuer.OpWatermark && op.Key.Kind == issuer.MarkSigningKey
	return p.bus.Publish(ctx, op.Tenant, op.ID, data, keyOp)
}

// KillSwitchRequest is the body of POST /api/v1/killswitch: one target, a reason, and optionally how long to
// wait for resource servers to acknowledge.
type KillSwitchRequest struct {
	// Agent is an agent's ID: every token it holds or delegated.
	Agent string `json:"agent,omitempty"`
	// Client is a client_id: every token issued to it.
	Client string `json:"client,omitempty"`
	// Tenant: every token of the tenant.
	Tenant string `json:"tenant,omitempty"`
	// User is a human as their IdP names them: every token of theirs, delegated ones included.
	User *issuer.Principal `json:"user,omitempty"`
	// Class is an agent class (blueprint).
	Class string `json:"agent_class,omitempty"`
	// Session is a session node: it and everything delegated below it.
	Session string `json:"session,omitempty"`
	// KeyID is an access-token signing key: every token it signed; the issuer rotates at once.
	KeyID string `json:"kid,omitempty"`
	// Reason says why, for logs and the CAEP event's reason_admin.
	Reason string `json:"reason,omitempty"`
	// Wait is how long to wait for acknowledgements ("2s"); none by default.
	Wait string `json:"wait,omitempty"`
	// Expect stops the wait as soon as this many resource servers acknowledged.
	Expect int `json:"expect,omitempty"`
}

// KillSwitchResponse says what was recorded and, when asked to wait, who applied it.
type KillSwitchResponse struct {
	Ops []issuer.Op `json:"ops"`
	// Acknowledged counts the resource servers that applied the ops within the wait.
	Acknowledged int `json:"acknowledged"`
	// Waited is how long the call waited, in milliseconds: with Expect reached, the propagation time.
	Waited float64 `json:"waited_ms"`
}

func (s *Server) handleKillSwitch(c echo.Context) error {
	var req KillSwitchRequest
	dec := json.NewDecoder(http.MaxBytesReader(nil, c.Request().Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return transmitter.BadRequest("the body is not a kill-switch request: %s", schemas.DescribeJSONError(err))
	}
	var wait time.Duration
	if req.Wait != "" {
		d, err := time.ParseDuration(req.Wait)
		if err != nil || d < 0 || d > time.Minute {
			return transmitter.BadRequest("wait must be a duration up to 1m, such as 2s")
		}
		wait = d
	}
	rr := issuer.RevocationRequest{SID: req.Session, User: req.User, Client: req.Client, Agent: req.Agent, Tenant: req.Tenant,
		Class: req.Class, KeyID: req.KeyID, Reason: req.Reason}
	rr.Disable = req.Session == "" && req.KeyID == "" // a kill switch also refuses new tokens for its key
	target, err := rr.Target()
	if err != nil {
		var oe *issuer.Error
		if errors.As(err, &oe) {
			return transmitter.BadRequest("%s", oe.Description)
		}
		return err
	}
	if target.Reason == "" {
		target.Reason = "kill switch"
	}
	count, changed, stop, err := s.revBus.WatchAcks()
	if err != nil {
		return err
	}
	defer stop()
	start := time.Now()
	ops, err := s.issuer.RevokeTarget(c.Request().Context(), target)
	if err != nil {
		var oe *issuer.Error
		if errors.As(err, &oe) {
			return transmitter.BadRequest("%s", oe.Description)
		}
		s.log.Error("kill switch failed part way", "recorded", len(ops), "err", err)
		// Say what was recorded: a disable without its watermark refuses new tokens but revokes nothing yet.
		return c.JSON(http.StatusInternalServerError, map[string]any{"error": "server_error",
			"error_description": "the kill switch was recorded only in part; pull it again", "ops": ops})
	}
	var ids []string // acknowledgements count for the ops that revoke, not for the disable
	for _, op := range ops {
		if op.Kind != issuer.OpDisable {
			ids = append(ids, op.ID)
		}
	}
	resp := KillSwitchResponse{Ops: ops}
	if wait > 0 {
		deadline := time.NewTimer(wait)
		defer deadline.Stop()
	loop:
		for req.Expect <= 0 || count(ids...) < req.Expect {
			select {
			case <-deadline.C:
				break loop
			case <-changed:
			case <-c.Request().Context().Done():
				break loop
			}
		}
		resp.Acknowledged = count(ids...)
		resp.Waited = float64(time.Since(start).Microseconds()) / 1000
	}
	return c.JSON(http.StatusOK, resp)
}
