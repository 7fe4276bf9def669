package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/nats-io/nats.go"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/lease"
	"github.com/ssfd/ssfd/internal/metrics"
	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/internal/telemetry"
	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/receiver/revocation"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/bolt"
	sjs "github.com/ssfd/ssfd/storage/jetstream"
	"github.com/ssfd/ssfd/streams"
	"github.com/ssfd/ssfd/transmitter"
	"github.com/ssfd/ssfd/transmitter/poll"
	"github.com/ssfd/ssfd/transmitter/push"
	"github.com/ssfd/ssfd/transmitter/relay"
)

// Server is one ssfd process: storage, NATS, the roles, and the HTTP API.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	db       *bolt.DB // the bbolt file; nil with --store jetstream
	nats     *natsbus.Embedded
	nc       *nats.Conn
	ln       net.Listener
	http     *http.Server
	tx       *transmitter.Transmitter
	waker    *poll.Waker
	push     *push.Manager
	relay    *relay.Relay
	metrics  *metrics.Metrics
	keys     *keySet
	stop     context.CancelFunc
	workers  sync.WaitGroup
	adminTok string

	rcv        *receiver.Receiver
	dispatch   *receiver.Dispatcher
	keepers    []*receiver.Keeper
	rcvMu      sync.Mutex // guards rcvStop and rcvDone between Serve and Shutdown
	rcvStop    context.CancelFunc
	rcvDone    bool // stopped, or never to start
	rcvWorkers sync.WaitGroup
	extraConns []*nats.Conn

	issuer   *issuer.Issuer
	revBus   *natsbus.RevocationBus
	revIndex *revocation.Index
	// issuerKeys are the issuer's access-token keys, for the check API's guard.
	issuerKeys keys.KeySource
	// revRefused counts revocation ops the index could not apply (not JSON, unknown kind): a feed that is not
	// understood is reported in metrics, not silently ignored.
	revRefused atomic.Int64
	// stopTracing flushes and stops the span exporter; nil without tracing.
	stopTracing func(context.Context) error

	// The stores of the roles: all s.db on one node, JetStream streams and buckets in a cluster (cluster.go).
	store       streams.Store
	queue       streams.Queue
	issuerStore issuer.Store
	inbox       receiver.Inbox
	rings       ringOpener
	// In a cluster: this replica's name and its work leases; closers close the JetStream stores.
	replicaID string
	leases    *lease.Set
	state     *sjs.State // the shared issuer and inbox state, watched by /readyz
	wakeFrom  string     // names this process in the wake-ups it publishes
	// stateLogged logs once that the shared state stopped.
	stateLogged sync.Once
	closers     []func() error
}

// New opens storage and NATS, wires the roles and binds the HTTP listener; Serve starts answering. cfg must
// have passed Validate.
func New(cfg config.Config, log *slog.Logger) (s *Server, err error) {
	s = &Server{cfg: cfg, log: log}
	opened := s // every error return sets s to nil: close what was opened through this copy
	defer func() {
		if err != nil {
			opened.close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data directory: %w", err)
	}
	if cfg.Tracing.Enabled {
		if s.stopTracing, err = telemetry.Setup(context.Background(), cfg.Tracing.Endpoint, cfg.Tracing.SampleRatio, cmp.Or(cfg.Version, "dev")); err != nil {
			return nil, err
		}
	}
	if err := s.startNATS(); err != nil {
		return nil, err
	}
	if err := s.openStores(); err != nil {
		return nil, err
	}
	if err := s.setUpRevocation(); err != nil {
		return nil, err
	}
	if s.ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", cfg.HTTPAddr, err)
	}
	if cfg.Issuer == "" {
		s.cfg.Issuer = "http://" + s.ln.Addr().String()
	}
	tokens, err := s.tokens()
	if err != nil {
		return nil, err
	}
	ks, err := openKeySet(s.rings, cfg.SigningAlgorithms)
	if err != nil {
		return nil, err
	}
	s.keys = ks
	s.waker = poll.NewWaker()
	guard, err := s.pushGuard()
	if err != nil {
		return nil, err
	}
	s.metrics = metrics.New(s.store, s.queue, cfg.MetricsPerStream)
	s.push = push.NewManager(s.store, s.queue, push.NewSender(guard, cfg.PushTimeout), push.WithLogger(log), push.WithObserver(s.metrics),
		push.WithBackoff(push.Backoff{Min: cfg.PushRetryMin, Max: cfg.PushRetryMax, MaxAge: cfg.PushMaxAge}))
	publisher, err := natsbus.NewSETPublisher(context.Background(), s.nc, s.natsReplicas())
	if err != nil {
		return nil, err
	}
	s.relay = relay.New(s.store, s.queue, publisher, log, s.metrics)
	local := transmitter.Notifiers{s.waker, s.push, s.relay}
	notify := transmitter.Notifier(local)
	if s.clustered() {
		s.push.SetOwnership(s.leases)
		s.relay.SetOwnership(s.leases)
		if err := s.followWakes(local); err != nil {
			return nil, err
		}
		notify = transmitter.Notifiers{local, clusterNotifier{nc: s.nc, self: s.wakeFrom}}

	}
	s.tx, err = transmitter.New(s.cfg.IssuerURL(), s.store, s.queue, ks,
		transmitter.WithNotifier(notify), transmitter.WithObserver(s.metrics),
		transmitter.WithDeliveryMethods(schemas.DeliveryPoll, schemas.DeliveryPush, schemas.DeliveryNATS),
		transmitter.WithPushURLCheck(func(u string) error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // bounded DNS lookup
			defer cancel()
			return guard.CheckURL(ctx, u)
		}), transmitter.WithLogger(log),
		transmitter.WithMinVerificationInterval(cfg.MinVerificationInterval),
		transmitter.WithInactivityTimeout(cfg.InactivityTimeout))
	if err != nil {
		return nil, err
	}
	pollServer := poll.NewServer(s.store, s.queue, s.waker, poll.WithTimeout(cfg.PollTimeout), poll.WithActivity(s.tx.Touch),
		poll.WithObserver(s.metrics))
	e := s.newEcho()
	if err := s.setUpReceiver(e, tokens); err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if s.leases != nil { // before any role waits for a lease, ssfd receive included
		s.workers.Go(func() { s.leases.Run(ctx) })
	}
	if s.state != nil { // one replica at a time snapshots the shared state and compacts its log
		s.workers.Go(func() { s.runStateSnapshots(ctx) })
	}
	if cfg.ReceiverOnly {
		s.revIndex = nil // ssfd receive publishes ops from the SETs it verifies but keeps no index of its own
		s.watchReconnects()
		s.http = s.newHTTPServer(e)
		return s, nil
	}
	verifier, err := s.setUpIssuer(e, tokens)
	if err != nil {
		return nil, err
	}
	if s.issuer != nil {
		e.POST(PathKillSwitch, s.handleKillSwitch, transmitter.Authenticate(verifier, issuer.ScopeAdmin))
	}
	e.POST(PathKeyRotation, s.handleKeyRotation, transmitter.Authenticate(verifier, issuer.ScopeAdmin))
	if err := s.setUpCheckAPI(e); err != nil {
		return nil, err
	}
	s.startRevocation(ctx)
	s.tx.Register(e, verifier)
	pollServer.Register(e, s.tx.BasePath(), verifier)
	if s.issuer != nil {
		s.workers.Go(func() {
			s.singleton(ctx, jobOutbox, func(ctx context.Context) { s.issuer.RunOutbox(ctx, outboxRetry) })
		})
	}
	if _, err := natsbus.ServeIntake(s.nc, 30*time.Second, func(ctx context.Context, _ string, body []byte) []byte {
		return s.tx.HandleIntake(ctx, body)
	}); err != nil {
		return nil, err
	}
	if cfg.InactivityTimeout > 0 {
		s.workers.Go(func() {
			s.singleton(ctx, jobInactivity, func(ctx context.Context) {
				s.tx.RunInactivityChecks(ctx, min(cfg.InactivityTimeout/10, time.Minute))
			})
		})
	}
	for name, run := range map[string]func(context.Context) error{"push": s.push.Run, "NATS relay": s.relay.Run} {
		s.workers.Add(1)
		go func() {
			defer s.workers.Done()
			if err := run(ctx); err != nil {
				log.Error(name+" delivery stopped", "err", err)
			}
		}()
	}
	s.watchReconnects()
	s.http = s.newHTTPServer(e)
	return s, nil
}

// watchReconnects makes a replica of a cluster look at everything again when its NATS connection comes back:
// wake-ups published while it was down are lost. Called once every role is set up.
func (s *Server) watchReconnects() {
	if !s.clustered() {
		return
	}
	s.nc.SetReconnectHandler(func(*nats.Conn) {
		s.log.Info("NATS connection back: waking long polls and delivery workers")
		s.waker.WakeAll()
		go s.push.Resync()
		go s.relay.Resync()
		if s.rcv != nil {
			s.rcv.Wake()
		}
	})
}

func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      s.cfg.PollTimeout + 15*time.Second, // longer than a long poll (spec/ssf.md GO-13)
		IdleTimeout:       2 * time.Minute,
	}
}

// pushGuard builds the SSRF guard of push delivery: --dev allows every target, otherwise public unicast plus
// the configured networks.
func (s *Server) pushGuard() (*push.Guard, error) {
	if s.cfg.Dev {
		return push.NewGuard(push.AllowAnyTarget()), nil
	}
	var prefixes []netip.Prefix
	for _, n := range s.cfg.PushAllowedNetworks {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return nil, fmt.Errorf("server: push_allowed_networks: %w", err)
		}
		prefixes = append(prefixes, p)
	}
	return push.NewGuard(push.AllowNetworks(prefixes...)), nil
}

func (s *Server) startNATS() error {
	url := s.cfg.NATSURL
	if url == "" {
		emb, err := natsbus.StartEmbedded(s.cfg.NATSListen, filepath.Join(s.cfg.DataDir, "nats"))
		if err != nil {
			return err
		}
		s.nats, url = emb, emb.ClientURL()
	}
	nc, err := natsbus.Connect(url, "ssfd")
	if err != nil {
		return err
	}
	s.nc = nc
	return nil
}

// tokens builds the static token verifier from the configuration and, with --dev, the admin token.
func (s *Server) tokens() (*transmitter.StaticTokens, error) {
	m := map[string]transmitter.Principal{}
	for _, t := range s.cfg.Tokens {
		v, err := t.TokenValue()
		if err != nil {
			return nil, err
		}
		m[v] = transmitter.Principal{ClientID: t.ClientID, Scopes: t.Scopes}
	}
	if s.cfg.Dev {
		tok, err := adminToken(s.AdminTokenPath())
		if err != nil {
			return nil, err
		}
		s.adminTok = tok
		m[tok] = transmitter.Principal{ClientID: "admin",
			Scopes: []string{transmitter.ScopeManage, transmitter.ScopeRead, transmitter.ScopeEmit, issuer.ScopeAdmin}}
	}
	return transmitter.NewStaticTokens(m), nil
}

// adminToken reads the dev admin token, or creates it (256 random bits, mode 0600).
func adminToken(path string) (string, error) {
	if data, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(data))) > 0 {
		return strings.TrimSpace(string(data)), nil
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("server: write admin token: %w", err)
	}
	return tok, nil
}

func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(s.log)
	e.Use(middleware.RequestID(), middleware.Recover(), s.observeHTTP)
	e.GET("/metrics", echo.WrapHandler(s.metrics.Handler()))
	e.GET("/healthz", func(c echo.Context) error {
		if s.stateStopped() { // only a restart brings a stopped shared state back: let the orchestrator do it
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "the shared state stopped; restart this replica"})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", s.handleReady)
	return e
}

// observeHTTP records every request in the HTTP metrics, by route pattern, after the error handler set its status.
func (s *Server) observeHTTP(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // render now, so the status is the one the client gets
		}
		took := time.Since(start)
		s.metrics.ObserveHTTP(c.Path(), c.Request().Method, c.Response().Status, took)
		s.log.Debug("request", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
			"method", c.Request().Method, "route", c.Path(), "status", c.Response().Status, "duration", took)
		return nil
	}
}

// stateStopped reports whether the shared state stopped following its log, logging why the first time.
func (s *Server) stateStopped() bool {
	if s.state == nil {
		return false
	}
	err := s.state.Err()
	if err != nil {
		s.stateLogged.Do(func() { s.log.Error("the shared state stopped; /healthz and /readyz now answer 503", "err", err) })
	}
	return err != nil
}

// handleReady reports ready when storage is open, NATS is connected and the revocation index was restored (503
// otherwise); a stale revocation feed is reported as "degraded" without making the process unready.
func (s *Server) handleReady(c echo.Context) error {
	checks := map[string]string{"storage": "ok", "nats": "ok"}
	status := http.StatusOK
	if s.nc == nil || !s.nc.IsConnected() {
		checks["nats"], status = "disconnected", http.StatusServiceUnavailable
	}
	if s.stateStopped() {
		checks["storage"], status = "stopped: the shared state log could not be followed; restart this replica", http.StatusServiceUnavailable
	}
	if s.revIndex != nil {
		checks["revocation_index"] = "ok"
		if !s.revIndex.Ready() {
			checks["revocation_index"], status = "restoring", http.StatusServiceUnavailable
		}
		checks["revocation_feed"] = "ok"
		if reason, stale := s.feedStale(); stale {
			checks["revocation_feed"] = "degraded: " + reason // reported, not unready: checks fall back or fail closed
		}
	}
	return c.JSON(status, checks)
}

// Addr returns the address the HTTP API listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Issuer returns the transmitter's issuer.
func (s *Server) Issuer() string { return s.tx.Issuer() }

// AdminTokenPath is where --dev keeps the admin token.
func (s *Server) AdminTokenPath() string { return filepath.Join(s.cfg.DataDir, "admin.token") }

// PathKeyRotation rotates the SET signing keys of a running server (of every replica, in a cluster).
const PathKeyRotation = "/api/v1/keys/rotate"

// KeyRotation is the answer of PathKeyRotation: the key that signs from now on, per algorithm.
type KeyRotation struct {
	Active map[string]string `json:"active"`
}

// handleKeyRotation rotates every SET signing ring: on one node the files, in a cluster the shared rings by
// compare-and-set, which every other replica picks up.
func (s *Server) handleKeyRotation(c echo.Context) error {
	if err := s.keys.rotate(); err != nil {
		s.log.Error("key rotation", "err", err)
		return echo.NewHTTPError(http.StatusServiceUnavailable, "the keys could not be rotated; try again")
	}
	out := KeyRotation{Active: map[string]string{}}
	for alg, ring := range s.keys.rings {
		out.Active[alg] = ring.Active().ID()
	}
	s.log.Info("SET signing keys rotated", "active", out.Active)
	return c.JSON(http.StatusOK, out)
}

// RotateKeys rotates the SET signing keys of every algorithm while the server runs and saves them: the next key,
// published in the JWKS since the last rotation, signs from now on; the active key is retired and stays
// published for keys.DefaultRetireWindow, so SETs it signed still verify.
func (s *Server) RotateKeys() error { return s.keys.rotate() }

// NATSURL returns the URL of the NATS server in use.
func (s *Server) NATSURL() string { return s.nc.ConnectedUrl() }

// natsURLForDisplay is the NATS URL with any password or token replaced, for printing and logs.
func (s *Server) natsURLForDisplay() string { return natsbus.Redact(s.nc.ConnectedUrl()) }

// Transmitter returns the transmitter, for in-process producers.
func (s *Server) Transmitter() *transmitter.Transmitter { return s.tx }

// Serve starts the receiver role (so that handlers registered on Dispatcher after New see every SET) and answers
// HTTP requests until Shutdown.
func (s *Server) Serve() error {
	s.rcvMu.Lock()
	if s.rcvStop == nil && !s.rcvDone {
		ctx, stop := context.WithCancel(context.Background())
		s.rcvStop = stop
		s.startReceiver(ctx)
	}
	s.rcvMu.Unlock()
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests, answers waiting long polls at once, lets running requests finish within
// ctx, then closes NATS and storage.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopReceiver() // first, so that a poll client's last acknowledgements still reach this transmitter
	s.waker.Close()
	err := s.http.Shutdown(ctx)
	s.close()
	return err
}

// stopReceiver stops the receiver role and waits for it; every wait inside it is bounded (HTTP client and handler
// timeouts), and once it returns the role never starts.
func (s *Server) stopReceiver() {
	s.rcvMu.Lock()
	s.rcvDone = true
	stop := s.rcvStop
	s.rcvMu.Unlock()
	if stop != nil {
		stop()
		s.rcvWorkers.Wait()
	}
}

func (s *Server) close() {
	s.stopReceiver()
	if s.stop != nil {
		s.stop()
		s.workers.Wait() // in-flight pushes settle before storage closes
	}
	for _, c := range s.closers {
		if err := c(); err != nil {
			s.log.Error("close storage", "err", err)
		}
	}
	for _, nc := range s.extraConns {
		nc.Close()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.nats != nil {
		s.nats.Shutdown()
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			s.log.Error("close storage", "err", err)
		}
	}
	if s.stopTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.stopTracing(ctx); err != nil {
			s.log.Warn("flush traces", "err", err)
		}
	}
}

// Run starts a server, prints where it is (and, with --dev, what to try next), serves until ctx is done, and
// shuts down gracefully within cfg.ShutdownTimeout.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, out io.Writer) error {
	TuneGC()
	s, err := New(cfg, log)
	if err != nil {
		return err
	}
	s.printWelcome(out)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve() }()
	select {
	case err := <-errc:
		s.close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return s.Shutdown(sctx)
}

func (s *Server) printWelcome(out io.Writer) {
	iss := s.Issuer()
	fmt.Fprintf(out, "ssfd is serving on http://%s\n", s.Addr())
	if !s.cfg.ReceiverOnly {
		fmt.Fprintf(out, "  transmitter metadata  %s%s\n", strings.TrimSuffix(iss, s.tx.BasePath()), s.tx.MetadataPath())
	}
	if s.issuer != nil {
		fmt.Fprintf(out, "  token issuer          %s%s\n", strings.TrimSuffix(iss, s.tx.BasePath()), issuer.WellKnownPath+s.tx.BasePath())
	}
	label := "embedded NATS"
	if s.nats == nil {
		label = "NATS"
	}
	fmt.Fprintf(out, "  %-21s %s\n", label, s.natsURLForDisplay())
	for _, g := range s.cfg.Receiver.Registrations {
		fmt.Fprintf(out, "  receiving from        %s (%s, registration %s)\n", g.Issuer, cmp.Or(g.Delivery, "poll"), g.Name)
	}
	if len(s.cfg.Receiver.Registrations) > 0 && s.cfg.Receiver.NATSSink {
		fmt.Fprintf(out, "  verified events on    NATS %s<event name>\n", natsbus.SubjectEventsPrefix)
	}
	if !s.cfg.Dev {
		return
	}
	tok := s.AdminTokenPath()
	fmt.Fprintf(out, "  admin token (dev)     %s\n\nTry, in another terminal:\n", tok)
	base := "http://" + s.Addr()
	if len(s.cfg.Receiver.Registrations) > 0 {
		fmt.Fprintf(out, "  bin/ssfd receiver status --url %s --token-file %s\n", base, tok)
	}
	if s.cfg.ReceiverOnly {
		return
	}
	fmt.Fprintf(out, "  bin/ssfd stream create --url %s --token-file %s\n", iss, tok)
	fmt.Fprintf(out, "  bin/ssfd emit --url %s --token-file %s --type %s --subject '{\"format\":\"email\",\"email\":\"ada@example.com\"}'\n",
		iss, tok, schemas.EventSessionRevoked.Name())
	fmt.Fprintf(out, "  bin/ssfd poll --url %s --token-file %s --stream <stream_id> --ack\n", iss, tok)
	if s.issuer != nil {
		fmt.Fprintf(out, "  bin/ssfd client create --url %s --token-file %s --id spiffe://example.org/agent/demo --tenant demo --scope demo.read --resource https://demo.example.org --secret-out demo.secret\n", iss, tok)
		fmt.Fprintf(out, "  bin/ssfd token --url %s --client-id spiffe://example.org/agent/demo --client-secret-file demo.secret --show claims\n", iss)
	}
}

// GCPercent is the garbage collector's target (GOGC) ssfd runs with unless the environment sets GOGC. Most of
// what a busy transmitter allocates is short-lived (bbolt's nodes of each commit, JWS encoding, HTTP requests)
// over a small live heap, so doubling the default target halves how often the collector runs for a few MB of
// heap: measured, 6–10 % less CPU per delivered SET (BENCHMARKS.md). GOMEMLIMIT still caps the heap.
const GCPercent = 200

// TuneGC sets the collector's target to GCPercent unless GOGC is set; Run calls it.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(GCPercent)
	}
}
