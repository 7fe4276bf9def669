package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/receiver/revocation"
)

// DemoRSConfig configures the demo resource server of the README tour.
type DemoRSConfig struct {
	// Addr is where it listens (default 127.0.0.1:9090).
	Addr string
	// Issuer is the token issuer (ssfd serve's issuer URL); its keys come from <Issuer>/oauth/jwks.
	Issuer string
	// Audience is this resource server's name: tokens must be issued for it.
	Audience string
	// NATSURL is where the revocation feed is (ssfd serve's embedded NATS by default).
	NATSURL string
}

// DemoRS is a resource server protected by the revocation middleware: GET /invoices answers 200 to a valid
// agent token and 401 once the token is revoked, and it prints how long each revocation took to arrive.
type DemoRS struct {
	cfg   DemoRSConfig
	ln    net.Listener
	srv   *http.Server
	ix    *revocation.Index
	bus   *natsbus.RevocationBus
	out   io.Writer
	outMu sync.Mutex
	last  time.Time // DecidedAt of the newest applied op not yet seen refusing, guarded by outMu
	close func()
}

// NewDemoRS binds the listener and connects to NATS; Run serves.
func NewDemoRS(cfg DemoRSConfig, out io.Writer) (*DemoRS, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:9090"
	}
	if cfg.Issuer == "" || cfg.Audience == "" || cfg.NATSURL == "" {
		return nil, errors.New("server: the demo resource server needs an issuer, an audience and a NATS URL")
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	nc, err := natsbus.Connect(cfg.NATSURL, "ssfd demo-rs")
	if err != nil {
		return nil, err
	}
	bus, err := natsbus.OpenRevocations(context.Background(), nc, 1, revocation.DefaultRetention)
	if err != nil {
		nc.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("server: listen on %s: %w", cfg.Addr, err)
	}
	d := &DemoRS{cfg: cfg, ln: ln, ix: revocation.NewIndex(), bus: bus, out: out}
	jwks, err := keys.NewRemoteJWKS(cfg.Issuer + "/oauth/jwks")
	if err != nil {
		ln.Close()
		nc.Close()
		return nil, err
	}
	guard, err := revocation.NewGuard(revocation.GuardConfig{Issuer: cfg.Issuer, Audiences: []string{cfg.Audience},
		Keys: jwks, Index: d.ix, PublicURL: "http://" + ln.Addr().String(),
		Stale: func() (string, bool) {
			if !nc.IsConnected() {
				return "NATS is disconnected", true
			}
			return heartbeatStale(d.ix)
		}})
	if err != nil {
		ln.Close()
		nc.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /invoices", d.watchRefusals(guard.Middleware(http.HandlerFunc(d.invoices))))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !d.ix.Ready() {
			http.Error(w, "restoring the revocation index", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	d.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	d.close = nc.Close
	return d, nil
}

// Addr returns the address it listens on.
func (d *DemoRS) Addr() string { return d.ln.Addr().String() }

// Run follows the revocation feed and serves until ctx is done; it returns once everything it started stopped.
func (d *DemoRS) Run(ctx context.Context) error {
	defer d.close()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	name := ackName("demo-rs")
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		followWithRetry(ctx, func(ctx context.Context) error {
			return d.bus.Follow(ctx, func(data []byte) { d.apply(name, data) }, d.restored)
		},
			func(err error, wait time.Duration) {
				d.printf("revocation feed stopped (%v); following again in %s\n", err, wait)
			})
	})
	wg.Go(func() { d.ix.RunSweeper(ctx.Done(), time.Minute) })
	d.printf("demo resource server on http://%s/invoices (audience %s, issuer %s)\n", d.Addr(), d.cfg.Audience, d.cfg.Issuer)
	errc := make(chan error, 1)
	go func() { errc <- d.srv.Serve(d.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.srv.Shutdown(sctx)
}

// apply applies one op of the feed, prints how long after the decision it arrived, then acknowledges it (so that
// a kill switch waiting for acknowledgements returns only after the line is printed).
func (d *DemoRS) apply(name string, data []byte) {
	op, err := applyFeedOp(d.ix, data)
	if err != nil || op.Kind == revocation.OpHeartbeat {
		return
	}
	if op.Revokes() && !op.DecidedAt.IsZero() && d.ix.Ready() {
		d.outMu.Lock()
		d.last = op.DecidedAt
		fmt.Fprintf(d.out, "revocation %s (%s %s%s%s) applied %.2f ms after the decision\n", op.ID, op.Kind,
			op.Key.Kind, op.Key.Value, op.SID+op.JTI, ms(time.Since(op.DecidedAt)))
		d.outMu.Unlock()
	}
	d.bus.Ack(name, op.ID)
}

// restored marks the index ready once the feed's stored ops are applied.
func (d *DemoRS) restored() {
	d.ix.SetReady()
	d.printf("revocation index restored (%d entries)\n", d.ix.Len())
}

func (d *DemoRS) printf(format string, args ...any) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	fmt.Fprintf(d.out, format, args...)
}

func (d *DemoRS) invoices(w http.ResponseWriter, r *http.Request) {
	c, _ := revocation.ClaimsFrom(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"invoices": []string{"INV-1001", "INV-1002"}, "sub": c.Subject,
		"client_id": c.ClientID, "act": c.Actors()})
}

// watchRefusals prints the first refusal after each revocation with its delay since the decision.
func (d *DemoRS) watchRefusals(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if rec.status != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "revoked") {
			return
		}
		d.outMu.Lock()
		defer d.outMu.Unlock()
		if !d.last.IsZero() {
			fmt.Fprintf(d.out, "refused a revoked token: 401, %.2f ms after the decision\n", ms(time.Since(d.last)))
			d.last = time.Time{}
		}
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
