package transmitter

import (
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// Signer signs SET claims with a key of the given JWS algorithm and publishes the public keys. keys.Ring
// per algorithm implements it through KeySet.
type Signer interface {
	// Sign returns the compact JWS of claims with typ secevent+jwt.
	Sign(alg string, claims []byte) (string, error)
	// Algorithms lists the algorithms it can sign with; the first is the default.
	Algorithms() []string
	// JWKS returns the public keys to publish at jwks_uri: every key a SET may be signed with, including keys
	// about to become active and retired keys still inside their overlap window.
	JWKS() ([]byte, error)
}

// Notifiers tells every notifier in turn.
type Notifiers []Notifier

// Notify tells each notifier.
func (ns Notifiers) Notify(ids ...streams.ID) {
	for _, n := range ns {
		n.Notify(ids...)
	}
}

// Queued tells each notifier that SETs were queued for streams delivered by method m: a QueueNotifier through
// Queued, any other through Notify.
func (ns Notifiers) Queued(m schemas.DeliveryMethod, ids ...streams.ID) {
	for _, n := range ns {
		if q, ok := n.(QueueNotifier); ok {
			q.Queued(m, ids...)
		} else {
			n.Notify(ids...)
		}
	}
}

// Notifier is told which streams got new SETs or changed, so that long polls and delivery workers wake at once
// (and, in a cluster, those of other replicas through ssf.wake.<stream_id>).
type Notifier interface {
	Notify(ids ...streams.ID)
}

// QueueNotifier is a Notifier that tells new SETs from changes. Queued says that SETs were queued for streams
// all delivered by method m and that nothing else about them changed, so that no delivery worker of another
// method starts and the one of m keeps its copy of the stream. The transmitter calls Queued after an emit and
// Notify after a change of a stream's configuration, status or existence.
type QueueNotifier interface {
	Notifier
	Queued(m schemas.DeliveryMethod, ids ...streams.ID)
}

// Transmitter is the SSF 1.0 transmitter: stream management (SSF 1.0 §8), event intake, routing and signing.
// Its methods are the Execute step of every endpoint; HTTP handlers, the CLI, NATS intake and tests call them.
type Transmitter struct {
	issuer   string
	store    streams.Store
	queue    streams.Queue
	signer   Signer
	policy   streams.Policy
	subjects schemas.DefaultSubjects
	notifier Notifier
	observer Observer
	now      func() time.Time
	log      *slog.Logger

	routes    routeCache
	verifyMu  sync.Mutex // serialises the min_verification_interval check per transmitter
	metadata  schemas.TransmitterMetadata
	issuerURL *url.URL
}

// Option configures a Transmitter.
type Option func(*Transmitter) error

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(t *Transmitter) error { t.now = now; return nil }
}

// WithNotifier sets who is told about new SETs (the poll server's waker).
func WithNotifier(n Notifier) Option {
	return func(t *Transmitter) error { t.notifier = n; return nil }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option {
	return func(t *Transmitter) error { t.log = l; return nil }
}

// WithDefaultSubjects sets default_subjects (default ALL: a new stream carries every subject until the receiver
// removes some, as the CAEP interoperability profile expects).
func WithDefaultSubjects(d schemas.DefaultSubjects) Option {
	return func(t *Transmitter) error {
		if d != schemas.DefaultSubjectsAll && d != schemas.DefaultSubjectsNone {
			return errors.New("transmitter: default_subjects must be ALL or NONE")
		}
		t.subjects = d
		return nil
	}
}

// WithMinVerificationInterval sets min_verification_interval (default 15 s; 0 turns the limit off).
func WithMinVerificationInterval(d time.Duration) Option {
	return func(t *Transmitter) error { t.policy.MinVerificationInterval = d; return nil }
}

// WithEventsSupported sets the event types streams may request (default: every CAEP 1.0 and RISC 1.0 type).
func WithEventsSupported(types ...schemas.EventType) Option {
	return func(t *Transmitter) error { t.policy.EventsSupported = types; return nil }
}

// WithDeliveryMethods sets the delivery methods streams may use (default: poll only, until push and NATS
// workers are registered).
func WithDeliveryMethods(methods ...schemas.DeliveryMethod) Option {
	return func(t *Transmitter) error { t.policy.DeliveryMethods = methods; return nil }
}

// WithPushURLCheck vets the endpoint_url of push streams (https, SSRF) at create and update time.
func WithPushURLCheck(check func(string) error) Option {
	return func(t *Transmitter) error { t.policy.CheckPushURL = check; return nil }
}

// New returns a transmitter for issuer (an absolute URL without query or fragment, SSF 1.0 §7.1) that keeps
// streams in store, SETs in queue, and signs with signer.
func New(issuer string, store streams.Store, queue streams.Queue, signer Signer, opts ...Option) (*Transmitter, error) {
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("transmitter: the issuer must be an absolute URL without query or fragment")
	}
	if store == nil || queue == nil || signer == nil || len(signer.Algorithms()) == 0 {
		return nil, errors.New("transmitter: a store, a queue and a signer are required")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	t := &Transmitter{
		issuer: issuer, issuerURL: u, store: store, queue: queue, signer: signer,
		subjects: schemas.DefaultSubjectsAll, now: time.Now, log: slog.Default(), observer: NopObserver{},
		policy: streams.Policy{
			Issuer:                  issuer,
			EventsSupported:         supportedByDefault(),
			DeliveryMethods:         []schemas.DeliveryMethod{schemas.DeliveryPoll},
			MinVerificationInterval: 15 * time.Second,
			SigningAlgorithms:       signer.Algorithms(),
		},
	}
	t.policy.PollURL = func(id streams.ID) string { return t.endpoint(PathPoll) + "/" + string(id) }
	for _, opt := range opts {
		if err := opt(t); err != nil {
			return nil, err
		}
	}
	t.routes.load = t.loadRoutes
	t.metadata = t.computeMetadata()
	return t, nil
}

// supportedByDefault is every CAEP and RISC event type; the SSF events are sent regardless (SSF 1.0 §8.1.4.1).
func supportedByDefault() []schemas.EventType {
	var out []schemas.EventType
	for _, et := range schemas.KnownEventTypes() {
		if et != schemas.EventVerification && et != schemas.EventStreamUpdated {
			out = append(out, et)
		}
	}
	return out
}

// Issuer returns the transmitter's issuer.
func (t *Transmitter) Issuer() string { return t.issuer }
