package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/receiver/revocation"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/transmitter"
)

// ReceiverStatusPath serves the status of every receiver registration.
const ReceiverStatusPath = "/api/v1/receiver/status"

// ReceiverStatus is the body of GET /api/v1/receiver/status.
type ReceiverStatus struct {
	// Registrations holds the status of every registration, by name.
	Registrations []receiver.Status `json:"registrations"`
	// Backlog counts the SETs accepted and not yet handled, across registrations.
	Backlog int `json:"backlog"`
}

// setUpReceiver builds the receiver role: the dispatcher with the configured sinks, the push endpoint, the
// status API, and one keeper per registration. Nothing runs until startReceiver.
func (s *Server) setUpReceiver(e *echo.Echo, tokens transmitter.TokenVerifier) error {
	rc := s.cfg.Receiver
	for _, g := range rc.Registrations {
		if s.clustered() && g.Delivery == "push" && g.PushURL == "" {
			// The default push URL is this replica's own address: pushes would reach one replica only, and the
			// stream would follow whichever replica manages it.
			return fmt.Errorf("server: receiver registration %s: with store %s, push delivery needs push_url, the "+
				"address that reaches every replica (the load balancer's)", g.Name, config.StoreJetStream)
		}
	}
	s.dispatch = receiver.NewDispatcher()
	if rc.NATSSink {
		pub, err := natsbus.NewEventPublisher(context.Background(), s.nc, s.natsReplicas())
		if err != nil {
			return err
		}
		s.dispatch.HandleAll(func(ctx context.Context, d receiver.Delivery) error {
			data, err := json.Marshal(receiver.NewEventMessage(d))
			if err != nil {
				return err
			}
			return pub.Publish(ctx, d.SET.Event.Type.Name(), d.SET.Issuer+" "+d.SET.ID, data)
		})
	}
	// Every verified CAEP/RISC event that revokes becomes ops on the revocation feed (spec/agent-auth.md §3.3), so
	// resource servers following NATS act on revocations of any transmitter.
	s.dispatch.HandleAll(func(ctx context.Context, d receiver.Delivery) error {
		if s.revBus == nil {
			return nil
		}
		ops, err := revocation.OpsFromSET(d.SET, revocation.WithNodeIssuers(s.cfg.IssuerURL()))
		if err != nil {
			s.log.Warn("a verified SET could not be mapped to revocation ops", "iss", d.SET.Issuer, "jti", d.SET.ID, "err", err)
			return nil // retrying cannot help
		}
		for _, op := range ops {
			data, err := json.Marshal(op)
			if err != nil {
				return err
			}
			keyOp := op.Kind == revocation.OpWatermark && op.Key.Kind == revocation.KeySigningKey
			if err := s.revBus.Publish(ctx, op.Tenant, op.ID, data, keyOp); err != nil {
				return err
			}
			if err := s.applyAtIssuer(ctx, op); err != nil {
				return err
			}
		}
		return nil
	})
	for _, w := range rc.Webhooks {
		h := http.Header{}
		for k, v := range w.Headers {
			h.Set(k, v)
		}
		s.dispatch.HandleAll(receiver.NewWebhookSink(w.URL, h, w.Timeout).Handle)
	}
	ropts := []receiver.Option{receiver.WithReplayWindow(rc.ReplayWindow), receiver.WithLogger(s.log),
		receiver.WithObserver(s.metrics)}
	states := &stateShare{nc: s.nc, replica: s.replicaID, log: s.log}
	if s.clustered() {
		// The inbox is shared: the replica draining it wakes when any replica accepts a SET, and handles SETs
		// other replicas accepted (which they must not keep parsed). The transmitter may deliver a verification
		// event to any replica: each tells the others the states it asks for.
		ropts = append(ropts, receiver.WithAcceptHook(func() { _ = s.nc.Publish(natsbus.SubjectInboxWake, []byte(s.wakeFrom)) }),
			receiver.WithoutParsedCache(), receiver.WithExpectHook(states.publish))
	}
	s.rcv = receiver.New(s.inbox, s.dispatch, ropts...)
	if s.clustered() {
		if err := s.followInboxWakes(s.rcv.Wake); err != nil {
			return err
		}
		if err := states.follow(s.rcv); err != nil {
			return err
		}
	}
	s.rcv.RegisterPush(e)
	e.GET(ReceiverStatusPath, func(c echo.Context) error {
		backlog, err := s.rcv.Backlog(c.Request().Context())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, ReceiverStatus{Registrations: s.rcv.Statuses(), Backlog: backlog})
	}, transmitter.Authenticate(tokens, transmitter.ScopeRead))
	for _, g := range rc.Registrations {
		reg, err := s.registration(g)
		if err != nil {
			return fmt.Errorf("server: receiver registration %s: %w", g.Name, err)
		}
		k, err := receiver.NewKeeper(s.rcv, reg)
		if err != nil {
			return err
		}
		s.keepers = append(s.keepers, k)
	}
	if s.clustered() {
		return states.catchUp()
	}
	return nil
}

// startReceiver runs the inbox dispatcher and every keeper until ctx is done.
func (s *Server) startReceiver(ctx context.Context) {
	s.rcvWorkers.Go(func() {
		s.singleton(ctx, jobReceiverWork, func(ctx context.Context) { _ = s.rcv.Run(ctx) })
	})
	for _, k := range s.keepers {
		if !s.clustered() {
			s.rcvWorkers.Go(func() { _ = k.Run(ctx) })
			continue
		}
		// Every replica follows every registration, to verify what is pushed to it; one replica at a time
		// manages its stream (finds or creates it, polls or consumes it, asks for verification), so that the
		// replicas neither create a stream each nor poll it each.
		s.rcvWorkers.Go(func() { _ = k.Follow(ctx) })
		s.rcvWorkers.Go(func() {
			s.singleton(ctx, jobReceiverRegistration+k.Name(), func(ctx context.Context) { _ = k.Run(ctx) })
		})
	}
}

// jobReceiverRegistration, followed by a registration's name, is the lease of the replica managing its stream.
const jobReceiverRegistration = "job.receiver-registration."

// verificationState is a state a replica expects in a registration's verification event.
type verificationState struct {
	Registration string    `json:"registration"`
	State        string    `json:"state"`
	Replica      string    `json:"replica"` // who asked, for the operator
	Asked        time.Time `json:"asked"`
}

// stateShare shares the verification states of the cluster's replicas, since the transmitter may deliver a
// verification event to any of them: each replica publishes the states it asks for, and records those the others
// ask for, or asked for before it started.
type stateShare struct {
	nc      *nats.Conn
	replica string
	log     *slog.Logger

	mu    sync.Mutex
	asked []verificationState // by this replica, oldest first
}

// publish tells the other replicas a state this one asks for. It waits until NATS has the message, so that it is
// out before the verification request that makes the transmitter send the event.
func (ss *stateShare) publish(registration, state string) {
	vs := verificationState{Registration: registration, State: state, Replica: ss.replica, Asked: time.Now()}
	ss.mu.Lock()
	ss.asked = append(ss.asked, vs)
	for len(ss.asked) > 0 && time.Since(ss.asked[0].Asked) > receiver.StateLifetime {
		ss.asked = ss.asked[1:]
	}
	ss.mu.Unlock()
	data, err := json.Marshal(vs)
	if err == nil {
		err = ss.nc.Publish(natsbus.SubjectVerificationStates, data)
	}
	if err == nil {
		err = ss.nc.FlushTimeout(5 * time.Second)
	}
	if err != nil {
		ss.log.Warn("could not share a verification state with the other replicas", "registration", registration, "err", err)
	}
}

// follow records in rcv the states every replica asks for (its own again does no harm) and answers the requests
// of replicas that start (catchUp makes this one's).
func (ss *stateShare) follow(rcv *receiver.Receiver) error {
	if _, err := ss.nc.Subscribe(natsbus.SubjectVerificationStates, func(m *nats.Msg) {
		var vs verificationState
		if err := json.Unmarshal(m.Data, &vs); err != nil || vs.State == "" {
			return
		}
		if err := rcv.ExpectVerification(vs.Registration, vs.State, vs.Asked); err != nil {
			ss.log.Debug("a verification state for a registration this replica lacks", "registration", vs.Registration,
				"replica", vs.Replica)
		}
	}); err != nil {
		return fmt.Errorf("server: follow verification states: %w", err)
	}
	if _, err := ss.nc.Subscribe(natsbus.SubjectVerificationSync, func(*nats.Msg) {
		ss.mu.Lock()
		asked := slices.Clone(ss.asked)
		ss.mu.Unlock()
		for _, vs := range asked {
			if data, err := json.Marshal(vs); err == nil {
				_ = ss.nc.Publish(natsbus.SubjectVerificationStates, data)
			}
		}
	}); err != nil {
		return fmt.Errorf("server: follow verification state requests: %w", err)
	}
	return nil
}

// catchUp asks the other replicas for the states they asked for; call it once every registration exists here,
// or the answers for registrations not yet added would be dropped.
func (ss *stateShare) catchUp() error {
	return ss.nc.Publish(natsbus.SubjectVerificationSync, []byte(ss.replica))
}

// Receiver returns the receiver role.
func (s *Server) Receiver() *receiver.Receiver { return s.rcv }

// Dispatcher returns the receiver's dispatcher, for in-process handlers: register them between New and Serve,
// which starts the receiver.
func (s *Server) Dispatcher() *receiver.Dispatcher { return s.dispatch }

// registration turns a configured registration into the receiver's.
func (s *Server) registration(g config.Registration) (receiver.Registration, error) {
	reg := receiver.Registration{Name: g.Name, Issuer: g.Issuer, Audience: g.Audience, StreamID: g.StreamID,
		SigningAlgorithm: g.SigningAlg, VerifyInterval: g.VerifyInterval, PushURL: g.PushURL}
	switch {
	case g.ClientCredentials != nil:
		cc := g.ClientCredentials
		secret, err := config.ValueOrFile(cc.ClientSecret, cc.ClientSecretFile)
		if err != nil {
			return reg, err
		}
		scopes := cc.Scopes
		if len(scopes) == 0 {
			scopes = []string{transmitter.ScopeManage, transmitter.ScopeRead}
		}
		reg.Token = receiver.ClientCredentials(cc.TokenURL, cc.ClientID, secret, scopes)
	default:
		tok, err := config.ValueOrFile(g.Token, g.TokenFile)
		if err != nil {
			return reg, err
		}
		reg.Token = receiver.StaticToken(tok)
	}
	auth, err := config.ValueOrFile(g.PushAuthorization, g.PushAuthorizationFile)
	if err != nil {
		return reg, err
	}
	reg.PushAuthorization = auth
	switch g.Delivery {
	case "push":
		reg.Delivery = schemas.DeliveryPush
		if reg.PushURL == "" {
			reg.PushURL = "http://" + s.ln.Addr().String() + receiver.PushPath + g.Name
		}
	case "nats":
		reg.Delivery = schemas.DeliveryNATS
		nc := s.nc
		if g.NATSURL != "" {
			if nc, err = natsbus.Connect(g.NATSURL, "ssfd receiver "+g.Name); err != nil {
				return reg, err
			}
			s.extraConns = append(s.extraConns, nc)
		}
		reg.ConsumeNATS = func(ctx context.Context, streamID string) error {
			return natsbus.ConsumeSETs(ctx, nc, natsbus.ConsumerName(g.Name), streamID, s.log, func(ctx context.Context, sets []string) []natsbus.Verdict {
				return s.verdicts(g.Name, s.rcv.ReceiveAll(ctx, g.Name, sets))
			})
		}
	default:
		reg.Delivery = schemas.DeliveryPoll
	}
	for _, name := range g.Events {
		t, err := schemas.LookupEventType(name)
		if err != nil {
			return reg, err
		}
		reg.EventsRequested = append(reg.EventsRequested, t)
	}
	for _, a := range g.Algorithms {
		alg, err := keys.ParseAlgorithm(a)
		if err != nil {
			return reg, err
		}
		reg.Algorithms = append(reg.Algorithms, alg)
	}
	return reg, nil
}

// verdicts maps the receiver's answer for each SET of a NATS batch: stored (or a replay) is acknowledged, refused
// is terminated so that JetStream never redelivers it, and a storage failure is redelivered.
func (s *Server) verdicts(registration string, errs []error) []natsbus.Verdict {
	out := make([]natsbus.Verdict, len(errs))
	for i, err := range errs {
		var ve *receiver.VerifyError
		switch {
		case err == nil:
			out[i] = natsbus.Ack
		case errors.As(err, &ve):
			s.log.Warn("refused a SET delivered over NATS", "registration", registration, "err", ve.Code,
				"description", ve.Description)
			out[i] = natsbus.Term
		default:
			out[i] = natsbus.Retry
		}
	}
	return out
}
