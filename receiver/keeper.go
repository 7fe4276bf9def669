package receiver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
)

// Registration is one transmitter the receiver subscribes to: where it is, how to authenticate to it, how SETs
// travel, which events to ask for, and what to expect of them.
type Registration struct {
	// Name identifies the registration; it names the push endpoint (/receiver/push/<Name>) and the NATS consumer.
	Name string
	// Issuer is the transmitter's issuer; its metadata is fetched from MetadataURL(Issuer) and must name exactly
	// this issuer, and every SET must carry it as iss.
	Issuer string
	// Token returns a bearer token for the transmitter's management and poll APIs (StaticToken or
	// ClientCredentials).
	Token func(context.Context) (string, error)
	// Delivery is the delivery method: poll (the default), push, or urn:ssfd:delivery:nats.
	Delivery schemas.DeliveryMethod
	// PushURL is this receiver's push endpoint as the transmitter reaches it (push only).
	PushURL string
	// PushAuthorization is the Authorization value the transmitter must send with each push (push only); it is
	// handed to the transmitter as delivery.authorization_header. Empty requires none.
	PushAuthorization string
	// EventsRequested lists the event types to ask for; empty asks for every CAEP and RISC type, of which the
	// transmitter keeps those it supports.
	EventsRequested []schemas.EventType
	// Description is the stream's description (default "ssfd receiver <Name>"); it tells this registration's
	// stream from those of other registrations that use the same credentials.
	Description string
	// Audience lists the aud values that name this receiver; empty accepts the aud of the stream the
	// transmitter created (spec/ssf.md VAL-06).
	Audience []string
	// StreamID adopts an existing stream instead of finding or creating one.
	StreamID string
	// Algorithms is the signature algorithm allow-list (default RS256, PS256, ES256, EdDSA).
	Algorithms []keys.Algorithm
	// SigningAlgorithm asks an ssfd transmitter to sign this stream's SETs with it (for example ES256).
	SigningAlgorithm string
	// Legacy accepts the legacy identifiers of spec/ssf.md §14.2.
	Legacy bool
	// VerifyInterval is how often verification is requested again (default 1 h; negative: only at start).
	VerifyInterval time.Duration
	// CheckInterval is how often the stream's configuration and status are checked (default 1 min).
	CheckInterval time.Duration
	// HTTPClient calls the transmitter (default: a 60 s timeout, enough for a long poll of up to 55 s).
	HTTPClient *http.Client
	// ConsumeNATS reads a stream delivered over NATS (urn:ssfd:delivery:nats) until ctx is done, handing its SETs
	// to the receiver (Receiver.ReceiveAll); required for that method only. internal/server provides it.
	ConsumeNATS func(ctx context.Context, streamID string) error
}

// StaticToken returns a token source that always returns token.
func StaticToken(token string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return token, nil }
}

// ClientCredentials returns a token source that gets tokens from an OAuth 2.0 token endpoint with the client
// credentials grant (RFC 6749 §4.4), asking for scopes (ssf.manage and ssf.read for a receiver), and reuses each
// until shortly before it expires. A request to the token endpoint ends with its caller's ctx, and after 30 s.
func ClientCredentials(tokenURL, clientID, clientSecret string, scopes []string) func(context.Context) (string, error) {
	cfg := &clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret, TokenURL: tokenURL, Scopes: scopes}
	hc := &http.Client{Timeout: 30 * time.Second}
	var mu sync.Mutex
	var cached *oauth2.Token
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if !cached.Valid() { // also when nil; Valid counts a token as expired a little before it is
			tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
			if err != nil {
				return "", err
			}
			cached = tok
		}
		return cached.AccessToken, nil
	}
}

// Keeper runs one registration: it discovers the transmitter, finds, adopts or creates the stream, sets up the
// verifier, starts the poll client or NATS consumer, requests verification, and keeps the stream healthy: it
// re-verifies on an interval, recreates a stream that vanished, and reports a paused or disabled stream.
type Keeper struct {
	r   *Receiver
	reg Registration
}

// NewKeeper returns a Keeper for reg, whose SETs r receives. It adds reg.Name to r.
func NewKeeper(r *Receiver, reg Registration) (*Keeper, error) {
	if reg.Name == "" || reg.Issuer == "" {
		return nil, errors.New("receiver: a registration needs a name and an issuer")
	}
	if _, err := MetadataURL(reg.Issuer); err != nil {
		return nil, err
	}
	if reg.Delivery == "" {
		reg.Delivery = schemas.DeliveryPoll
	}
	switch reg.Delivery {
	case schemas.DeliveryPoll:
	case schemas.DeliveryPush:
		if reg.PushURL == "" {
			return nil, fmt.Errorf("receiver: registration %s: push delivery needs the push URL the transmitter reaches", reg.Name)
		}
	case schemas.DeliveryNATS:
		if reg.ConsumeNATS == nil {
			return nil, fmt.Errorf("receiver: registration %s: NATS delivery needs a NATS connection", reg.Name)
		}
	default:
		return nil, fmt.Errorf("receiver: registration %s: unknown delivery method %s", reg.Name, reg.Delivery)
	}
	if reg.Description == "" {
		reg.Description = describedPrefix + reg.Name
	}
	if len(reg.EventsRequested) == 0 { // every event this package knows; the transmitter keeps those it supports
		for _, t := range schemas.KnownEventTypes() {
			if t != schemas.EventVerification && t != schemas.EventStreamUpdated {
				reg.EventsRequested = append(reg.EventsRequested, t)
			}
		}
	}
	if reg.VerifyInterval == 0 {
		reg.VerifyInterval = time.Hour
	}
	if reg.CheckInterval <= 0 {
		reg.CheckInterval = time.Minute
	}
	if reg.HTTPClient == nil {
		reg.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if err := r.Add(reg.Name); err != nil {
		return nil, err
	}
	if err := r.SetPushAuthorization(reg.Name, reg.PushAuthorization); err != nil {
		return nil, err
	}
	_ = r.UpdateStatus(reg.Name, func(s *Status) { s.Issuer, s.Delivery = reg.Issuer, reg.Delivery })
	return &Keeper{r: r, reg: reg}, nil
}

// Name returns the registration's name.
func (k *Keeper) Name() string { return k.reg.Name }

// Run keeps the registration until ctx is done. Problems are logged, shown in Status.Error, and retried with
// backoff; Run returns ctx's error only when ctx is done.
func (k *Keeper) Run(ctx context.Context) error {
	delay := time.Duration(0)
	for {
		began := time.Now()
		err := k.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		k.report(err)
		if time.Since(began) > 5*time.Minute { // a session that ran a while starts the backoff afresh
			delay = 0
		}
		delay = min(max(2*delay, time.Second), time.Minute)
		k.r.log.Warn("receiver registration: will retry", "registration", k.reg.Name, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
}

func (k *Keeper) report(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	_ = k.r.UpdateStatus(k.reg.Name, func(s *Status) { s.Error = msg })
}

// errStreamGone ends a session so that the next one finds or creates the stream again.
var errStreamGone = errors.New("receiver: the stream no longer exists at the transmitter")

// session discovers the transmitter, sets up one stream and receives from it until the stream vanishes, an
// error occurs, or ctx is done.
func (k *Keeper) session(ctx context.Context) error {
	client, err := Discover(ctx, k.reg.Issuer, WithHTTPClient(k.reg.HTTPClient), WithTokenSource(k.reg.Token))
	if err != nil {
		return err
	}
	md := client.Metadata()
	jwks, err := keys.NewRemoteJWKS(md.JWKSURI, keys.WithHTTPClient(k.reg.HTTPClient),
		keys.WithMinRefetchInterval(10*time.Second))
	if err != nil {
		return fmt.Errorf("receiver: jwks_uri: %w", err)
	}
	if len(k.reg.Audience) > 0 { // known in advance: ready before the transmitter's first push
		if err := k.setVerifier(jwks, md.Issuer, k.reg.Audience); err != nil {
			return err
		}
	}
	stream, err := k.stream(ctx, client)
	if err != nil {
		return err
	}
	aud := k.reg.Audience
	if len(aud) == 0 {
		aud = stream.Audience
	}
	if err := k.setVerifier(jwks, md.Issuer, aud); err != nil {
		return err
	}
	_ = k.r.UpdateStatus(k.reg.Name, func(s *Status) { s.StreamID, s.Error = stream.StreamID, "" })
	k.r.log.Info("receiver registration ready", "registration", k.reg.Name, "issuer", md.Issuer,
		"stream_id", stream.StreamID, "delivery", stream.Delivery.Method)

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deliveryErr := make(chan error, 1)
	go func() { deliveryErr <- k.deliver(sctx, client, stream) }()
	defer func() { // the poll client sends its last acks before the next session
		cancel()
		if err := <-deliveryErr; err != nil {
			k.r.log.Warn("receiver delivery stopped", "registration", k.reg.Name, "err", err)
		}
	}()

	verifyTick := time.NewTicker(max(k.reg.VerifyInterval, time.Second))
	defer verifyTick.Stop()
	checkTick := time.NewTicker(k.reg.CheckInterval)
	defer checkTick.Stop()
	k.verify(ctx, client, stream.StreamID)
	k.checkStatus(ctx, client, stream.StreamID)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-deliveryErr:
			deliveryErr <- nil // for the deferred wait; Run reports err
			return err
		case <-verifyTick.C:
			if k.reg.VerifyInterval > 0 {
				k.verify(ctx, client, stream.StreamID)
			}
		case <-checkTick.C:
			if _, err := client.GetStream(ctx, stream.StreamID); isNotFound(err) {
				return errStreamGone
			} else if err != nil {
				k.report(err)
				continue
			}
			k.checkStatus(ctx, client, stream.StreamID)
		}
	}
}

func (k *Keeper) setVerifier(jwks keys.KeySource, issuer string, aud []string) error {
	var opts []VerifierOption
	if len(k.reg.Algorithms) > 0 {
		opts = append(opts, WithAlgorithms(k.reg.Algorithms...))
	}
	if k.reg.Legacy {
		opts = append(opts, WithLegacyPeers())
	}
	v, err := NewVerifier(jwks, issuer, aud, opts...)
	if err != nil {
		return err
	}
	return k.r.SetVerifier(k.reg.Name, v)
}

func isNotFound(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound
}

// request is the receiver-supplied part of the stream this registration wants.
func (k *Keeper) request() StreamRequest {
	req := StreamRequest{EventsRequested: k.reg.EventsRequested, Description: k.reg.Description,
		SigningAlgorithm: k.reg.SigningAlgorithm}
	switch k.reg.Delivery {
	case schemas.DeliveryPush:
		req.Delivery = &schemas.Delivery{Method: schemas.DeliveryPush, EndpointURL: k.reg.PushURL,
			AuthorizationHeader: k.reg.PushAuthorization}
	default:
		req.Delivery = &schemas.Delivery{Method: k.reg.Delivery}
	}
	return req
}

// describedPrefix starts the description of every stream an ssfd receiver creates, followed by the registration's
// name: it tells a registration's stream from those of the other registrations sharing the same credentials.
const describedPrefix = "ssfd receiver "

// stream finds the registration's stream: the configured one; or the one described as this registration's
// (brought up to date with the wanted configuration, so that a changed push URL, push authorization or event list
// takes effect); or one with the wanted delivery and events that no registration claims (claimed by replacing it
// with this registration's description); or a new one. A
// transmitter that allows one stream per receiver answers 409 to a second create; the existing stream is then
// replaced with the wanted configuration, unless it is another registration's.
func (k *Keeper) stream(ctx context.Context, client *Client) (*schemas.StreamConfiguration, error) {
	want := k.request()
	if k.reg.StreamID != "" {
		s, err := client.GetStream(ctx, k.reg.StreamID)
		if isNotFound(err) { // pinned by the operator: never replaced by another one
			return nil, fmt.Errorf("receiver: the configured stream_id %s does not exist at %s", k.reg.StreamID, k.reg.Issuer)
		}
		return s, err
	}
	existing, err := client.ListStreams(ctx)
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	for i := range existing {
		if s := &existing[i]; s.Description == want.Description {
			if want.Delivery.Method == schemas.DeliveryPush || !k.matches(s, want) {
				return client.ReplaceStream(ctx, s.StreamID, want)
			}
			return s, nil
		}
	}
	for i := range existing {
		if s := &existing[i]; !claimed(s) && k.matches(s, want) {
			return client.ReplaceStream(ctx, s.StreamID, want) // claims it with this registration's description
		}
	}
	created, err := client.CreateStream(ctx, want)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict && len(existing) > 0 {
		if claimed(&existing[0]) {
			return nil, fmt.Errorf("receiver: %s allows one stream per receiver, and %q has it", k.reg.Issuer,
				existing[0].Description)
		}
		return client.ReplaceStream(ctx, existing[0].StreamID, want)
	}
	return created, err
}

// matches reports whether an existing stream has the wanted delivery and events.
func (k *Keeper) matches(s *schemas.StreamConfiguration, want StreamRequest) bool {
	return s.Delivery.Method == want.Delivery.Method &&
		(want.Delivery.Method != schemas.DeliveryPush || s.Delivery.EndpointURL == want.Delivery.EndpointURL) &&
		slices.Equal(s.EventsRequested, want.EventsRequested)
}

// claimed reports whether an ssfd receiver registration created s.
func claimed(s *schemas.StreamConfiguration) bool {
	return strings.HasPrefix(s.Description, describedPrefix)
}

// deliver runs the delivery side of a poll or NATS stream until ctx is done; a push stream needs nothing here.
func (k *Keeper) deliver(ctx context.Context, client *Client, s *schemas.StreamConfiguration) error {
	switch s.Delivery.Method {
	case schemas.DeliveryPoll:
		return NewPoller(k.r, k.reg.Name, client, s.Delivery.EndpointURL,
			WithPollErrors(func(err error) {
				if isNotFound(err) {
					k.report(errStreamGone)
				}
			})).Run(ctx)
	case schemas.DeliveryNATS:
		if k.reg.ConsumeNATS == nil {
			return fmt.Errorf("receiver: stream %s is delivered over NATS but %s has no NATS connection", s.StreamID, k.reg.Name)
		}
		return k.reg.ConsumeNATS(ctx, s.StreamID)
	}
	<-ctx.Done()
	return nil
}

// verify requests a verification event with a fresh state (SSF 1.0 §8.1.4.2); the event proves the stream works
// end to end when it arrives. A 429 (too soon after the last one) is not a problem.
func (k *Keeper) verify(ctx context.Context, client *Client, id string) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	state := hex.EncodeToString(b[:])
	_ = k.r.ExpectState(k.reg.Name, state)
	err := client.Verify(ctx, id, state)
	var apiErr *APIError
	throttled := errors.As(err, &apiErr) && apiErr.Status == http.StatusTooManyRequests // VF-20 lets it refuse
	if err != nil && !throttled && ctx.Err() == nil {
		k.r.log.Warn("verification request failed", "registration", k.reg.Name, "stream_id", id, "err", err)
		k.report(fmt.Errorf("verification request: %w", err))
	}
}

// checkStatus records the stream's status and reports a stream the transmitter paused or disabled.
func (k *Keeper) checkStatus(ctx context.Context, client *Client, id string) {
	st, err := client.Status(ctx, id)
	if err != nil {
		if ctx.Err() == nil && !isNotFound(err) {
			k.report(fmt.Errorf("status: %w", err))
		}
		return
	}
	msg := ""
	if st.Status != schemas.StatusEnabled {
		msg = fmt.Sprintf("the transmitter reports the stream %s", st.Status)
		if st.Reason != "" {
			msg += ": " + st.Reason
		}
		k.r.log.Warn("receiver stream is not enabled", "registration", k.reg.Name, "stream_id", id,
			"status", st.Status, "reason", st.Reason)
	}
	_ = k.r.UpdateStatus(k.reg.Name, func(s *Status) { s.StreamStatus, s.Error = st.Status, msg })
}
