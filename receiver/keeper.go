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

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
)

// Keeper runs one registration: it discovers the transmitter, finds, adopts or creates the stream, sets up the
// verifier, starts the poll client or NATS consumer, requests verification, and keeps the stream healthy: it
// re-verifies on an interval, recreates a stream that vanished, and reports a paused or disabled stream.
//
// In a cluster every replica runs Follow, which keeps the verifier of SETs pushed to it, and one replica at a time
// runs Run as well, which manages the stream.
type Keeper struct {
	r   *Receiver
	reg Registration

	mu     sync.Mutex // orders the verifiers Run and Follow set
	owners int        // how many Run calls are running: while one is, Follow leaves the verifier to it
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

// Run keeps the registration until ctx is done: it finds or creates the stream, delivers it, requests
// verification (SSF 1.0 §8.1.4.2) and checks the stream's status. Problems are logged, shown in Status.Error, and
// retried with backoff; Run returns ctx's error only when ctx is done. In a cluster one replica at a time runs it.
func (k *Keeper) Run(ctx context.Context) error {
	k.own(1)
	defer k.own(-1)
	return k.keep(ctx, true, k.session)
}

// Follow keeps what this process needs to verify the registration's SETs pushed to it, until ctx is done, and
// changes nothing at the transmitter: it discovers the transmitter and its JWKS, and takes the audience from the
// registration or, when it names none, from the stream another replica's Run made (looked up as Run does, by
// stream_id or description; never created, claimed or updated; waited for with backoff while it is missing),
// looked up again every CheckInterval. It neither polls, nor consumes NATS, nor requests verification. Replicas of
// a cluster follow every registration; Run may run alongside in the same process, and then sets the verifier
// itself. Follow returns ctx's error only when ctx is done.
func (k *Keeper) Follow(ctx context.Context) error { return k.keep(ctx, false, k.follow) }

func (k *Keeper) own(delta int) {
	k.mu.Lock()
	k.owners += delta
	k.mu.Unlock()
}

func (k *Keeper) owned() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.owners > 0
}

// keep runs session again and again, with backoff after each failure, until ctx is done.
func (k *Keeper) keep(ctx context.Context, owner bool, session func(context.Context) error) error {
	delay := time.Duration(0)
	for {
		began := time.Now()
		err := session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if owner || !k.owned() { // a follower does not overwrite what Run reports
			k.report(err)
		}
		if time.Since(began) > 5*time.Minute { // a session that ran a while starts the backoff afresh
			delay = 0
		}
		delay = min(max(2*delay, time.Second), time.Minute)
		k.r.log.Warn("receiver registration: will retry", "registration", k.reg.Name, "owner", owner,
			"retry_in", delay, "err", err)
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
	client, jwks, iss, err := k.discover(ctx)
	if err != nil {
		return err
	}
	if len(k.reg.Audience) > 0 { // known in advance: ready before the transmitter's first push
		if err := k.setVerifier(jwks, iss, k.reg.Audience, true, nil); err != nil {
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
	if err := k.setVerifier(jwks, iss, aud, true, nil); err != nil {
		return err
	}
	_ = k.r.UpdateStatus(k.reg.Name, func(s *Status) { s.StreamID, s.Error = stream.StreamID, "" })
	k.r.log.Info("receiver registration ready", "registration", k.reg.Name, "issuer", iss,
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

// setVerifier sets the registration's verifier, then changes its status with status (if not nil). A follower's
// (owner false) is dropped while Run runs in this process, so that a follower that looked the stream up before
// Run changed it cannot undo Run's verifier or status.
func (k *Keeper) setVerifier(jwks keys.KeySource, issuer string, aud []string, owner bool, status func(*Status)) error {
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
	k.mu.Lock()
	defer k.mu.Unlock()
	if !owner && k.owners > 0 {
		return nil
	}
	if err := k.r.SetVerifier(k.reg.Name, v); err != nil {
		return err
	}
	if status != nil {
		_ = k.r.UpdateStatus(k.reg.Name, status)
	}
	return nil
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
	found, existing, err := k.lookup(ctx, client)
	switch {
	case err != nil || k.reg.StreamID != "":
		return found, err
	case found != nil:
		if want.Delivery.Method == schemas.DeliveryPush || !k.matches(found, want) {
			return client.ReplaceStream(ctx, found.StreamID, want)
		}
		return found, nil
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

// errNoStream ends a follower's session while the registration's stream is not at the transmitter: another
// replica's Run has yet to create it.
var errNoStream = errors.New("receiver: the registration's stream is not at the transmitter yet")

// find looks the registration's stream up the way stream does, changing nothing at the transmitter: the
// configured one, or the one described as this registration's; errNoStream when there is none yet.
func (k *Keeper) find(ctx context.Context, client *Client) (*schemas.StreamConfiguration, error) {
	found, _, err := k.lookup(ctx, client)
	if err == nil && found == nil {
		return nil, errNoStream
	}
	return found, err
}

// lookup finds the registration's stream without changing anything at the transmitter: the configured one, or
// the one described as this registration's (nil when there is none), with every stream listed so that the
// caller can choose another.
func (k *Keeper) lookup(ctx context.Context, client *Client) (found *schemas.StreamConfiguration, existing []schemas.StreamConfiguration, err error) {
	if k.reg.StreamID != "" {
		found, err = k.pinned(ctx, client)
		return found, nil, err
	}
	existing, err = client.ListStreams(ctx)
	if err != nil && !isNotFound(err) {
		return nil, nil, err
	}
	return k.described(existing), existing, nil
}

// pinned returns the stream the operator configured, which is never replaced by another one.
func (k *Keeper) pinned(ctx context.Context, client *Client) (*schemas.StreamConfiguration, error) {
	s, err := client.GetStream(ctx, k.reg.StreamID)
	if isNotFound(err) {
		return nil, fmt.Errorf("receiver: the configured stream_id %s does not exist at %s", k.reg.StreamID, k.reg.Issuer)
	}
	return s, err
}

// described returns the stream described as this registration's, or nil.
func (k *Keeper) described(existing []schemas.StreamConfiguration) *schemas.StreamConfiguration {
	for i := range existing {
		if existing[i].Description == k.reg.Description {
			return &existing[i]
		}
	}
	return nil
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
