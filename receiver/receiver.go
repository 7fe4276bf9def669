package receiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// ErrUnknownRegistration is returned for a registration name the receiver does not have.
var ErrUnknownRegistration = errors.New("receiver: unknown registration")

// ErrNotReady is returned when a registration has no stream yet, so its SETs cannot be verified.
var ErrNotReady = errors.New("receiver: the registration's stream is not set up yet")

// Observer is told what happens to SETs, for metrics. Its methods must be cheap and safe for concurrent use.
type Observer interface {
	// SETReceived counts one SET: outcome is "accepted", "duplicate", or an RFC 8935 error code.
	SETReceived(registration, outcome string)
	// SETHandled records how long a SET waited from acceptance until its handlers succeeded, or that they failed.
	SETHandled(registration string, wait time.Duration, err error)
}

type noObserver struct{}

func (noObserver) SETReceived(string, string)              {}
func (noObserver) SETHandled(string, time.Duration, error) {}

// Receiver accepts SETs for its registrations, however they arrive (push endpoint, poll client, NATS consumer,
// a Go call): it verifies each (spec/ssf.md §1.3), checks the state of verification events (VAL-11), stores it
// in the durable Inbox with replay protection on (iss, jti) (VAL-12), and only then lets the caller acknowledge
// it (VAL-13). Run hands stored SETs to the Dispatcher until every handler succeeded, retrying with backoff.
type Receiver struct {
	inbox   Inbox
	disp    *Dispatcher
	log     *slog.Logger
	obs     Observer
	onSET   func()                           // after each accepted SET; nil for none
	onState func(registration, state string) // after each ExpectState; nil for none
	noCache bool                             // pending stays empty: Run parses the stored claims
	window  time.Duration
	started time.Time     // when New was called
	setUp   time.Duration // how long a push waits for its registration to get ready
	hwait   time.Duration // how long the handlers of one SET may take

	mu   sync.RWMutex
	regs map[string]*binding

	wake chan struct{}
	// pending maps iss + "\x00" + jti → *schemas.SET accepted in this process, so that Run need not parse it
	// again (empty with noCache); Run removes an entry when it handled the SET.
	pending sync.Map
}

// Option configures a Receiver.
type Option func(*Receiver)

// WithReplayWindow sets how long (iss, jti) is remembered after a SET was accepted (default 7 days, spec/ssf.md
// VAL-12); it should be longer than any transmitter's redelivery period.
func WithReplayWindow(d time.Duration) Option { return func(r *Receiver) { r.window = d } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(r *Receiver) { r.log = l } }

// WithAcceptHook sets f, called after each SET is accepted into the inbox: clustered ssfd tells the replica
// draining the shared inbox to wake.
func WithAcceptHook(f func()) Option { return func(r *Receiver) { r.onSET = f } }

// WithExpectHook sets f, called after ExpectState recorded the state a verification request carries (SSF 1.0
// §8.1.4.2): clustered ssfd hands it to the other replicas (ExpectVerification), since the transmitter may deliver
// the verification event to any of them (spec/ssf.md VAL-11).
func WithExpectHook(f func(registration, state string)) Option {
	return func(r *Receiver) { r.onState = f }
}

// WithoutParsedCache stops the receiver from keeping each SET it accepts parsed in memory until Run handles it;
// Run parses the stored claims instead. Clustered ssfd sets it: a replica accepts SETs that the replica draining
// the shared inbox handles, so what it kept would never be dropped.
func WithoutParsedCache() Option { return func(r *Receiver) { r.noCache = true } }

// WithObserver sets the metrics observer.
func WithObserver(o Observer) Option { return func(r *Receiver) { r.obs = o } }

// WithSetUpWait sets how long a push waits for its registration's stream to be set up before it is answered 503
// (default 10 s): a transmitter may push a verification event before the answer to the create request arrived.
func WithSetUpWait(d time.Duration) Option { return func(r *Receiver) { r.setUp = d } }

// WithHandlerTimeout bounds how long the handlers of one SET may take (default 15 s); past it they fail and the
// SET is handed to them again later. Handlers that started before Run was stopped may finish within it, so that
// a graceful stop does not cut a delivery in half.
func WithHandlerTimeout(d time.Duration) Option { return func(r *Receiver) { r.hwait = d } }

// New returns a Receiver that stores SETs in inbox and hands them to d.
func New(inbox Inbox, d *Dispatcher, opts ...Option) *Receiver {
	r := &Receiver{inbox: inbox, disp: d, log: slog.New(slog.DiscardHandler), obs: noObserver{},
		window: 7 * 24 * time.Hour, started: time.Now(), setUp: 10 * time.Second, hwait: 15 * time.Second, regs: map[string]*binding{}, wake: make(chan struct{}, 1)}
	for _, opt := range opts {
		opt(r)
	}
	return r
}

// binding is the receiving side of one registration: its verifier once the stream is known, the push
// credential, the verification states asked for, and the counters behind Status.
type binding struct {
	name     string
	verifier atomic.Pointer[Verifier]
	ready    chan struct{} // closed once verifier is set
	readyOne sync.Once
	pushAuth atomic.Pointer[string]

	mu     sync.Mutex
	st     Status
	states map[string]time.Time // state → when verification was requested
}

func (r *Receiver) binding(name string) (*binding, error) {
	r.mu.RLock()
	b := r.regs[name]
	r.mu.RUnlock()
	if b == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownRegistration, name)
	}
	return b, nil
}

// Add declares a registration by name; its SETs are refused with ErrNotReady until SetVerifier is called.
// Adding a name twice is an error.
func (r *Receiver) Add(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.regs[name]; dup {
		return fmt.Errorf("receiver: registration %q added twice", name)
	}
	r.regs[name] = &binding{name: name, ready: make(chan struct{}), states: map[string]time.Time{},
		st: Status{Name: name, Rejected: map[schemas.ErrorCode]uint64{}}}
	return nil
}

// SetVerifier sets (or replaces, after a stream was recreated or its audience changed) the verifier of a
// registration, which makes it ready.
func (r *Receiver) SetVerifier(name string, v *Verifier) error {
	b, err := r.binding(name)
	if err != nil {
		return err
	}
	b.verifier.Store(v)
	b.readyOne.Do(func() { close(b.ready) })
	return nil
}

// SetPushAuthorization sets the Authorization header value the push endpoint requires of this registration's
// transmitter (spec/ssf.md VAL-08); empty requires none.
func (r *Receiver) SetPushAuthorization(name, value string) error {
	b, err := r.binding(name)
	if err != nil {
		return err
	}
	b.pushAuth.Store(&value)
	return nil
}

// StateLifetime is how long a state sent in a verification request is expected: enough for any delayed delivery
// of the verification event (spec/ssf.md VAL-11).
const StateLifetime = 24 * time.Hour

// ExpectState records a state sent in a verification request, so that the verification event carrying it is
// accepted and counted as the registration's last verification (spec/ssf.md VAL-11), and tells the hook set with
// WithExpectHook.
func (r *Receiver) ExpectState(name, state string) error {
	if err := r.ExpectVerification(name, state, time.Now()); err != nil {
		return err
	}
	if r.onState != nil {
		r.onState(name, state)
	}
	return nil
}

// ExpectVerification records a state that another replica of a cluster sent at asked in a verification request
// for registration, so that the verification event carrying it is accepted here as well (spec/ssf.md VAL-11),
// whichever replica the transmitter delivers it to. The state is expected for StateLifetime from asked, as
// ExpectState's are; the hook is not told.
func (r *Receiver) ExpectVerification(registration, state string, asked time.Time) error {
	b, err := r.binding(registration)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	for s, at := range b.states {
		if now.Sub(at) > StateLifetime {
			delete(b.states, s)
		}
	}
	if now.Sub(asked) > StateLifetime {
		return nil
	}
	if at, ok := b.states[state]; !ok || asked.After(at) {
		b.states[state] = asked
	}
	if asked.After(b.st.LastVerificationRequested) {
		b.st.LastVerificationRequested = asked
	}
	return nil
}

// WaitReady blocks until the registration has a verifier or ctx is done.
func (r *Receiver) WaitReady(ctx context.Context, name string) error {
	b, err := r.binding(name)
	if err != nil {
		return err
	}
	select {
	case <-b.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %s", ErrNotReady, name)
	}
}

// Receive verifies one SET that arrived for registration name and stores it for handling. It returns nil when
// the SET may be acknowledged (also for a replay, which is not handled again), a *VerifyError when the SET is
// refused (answer or report its code), and another error when it could not be stored (do not acknowledge).
func (r *Receiver) Receive(ctx context.Context, name, token string) error {
	b, set, claims, err := r.check(ctx, name, token, "")
	if err != nil {
		return err
	}
	return r.accept(ctx, b, set, claims)
}

// check verifies a SET for registration name (spec/ssf.md §1.3 and VAL-11) and counts a refusal. A non-empty jti
// is the one the SET was delivered under (the key of a poll response's sets), which it must carry (RFC 8936
// §2.2), lest acknowledging that key acknowledge another SET.
func (r *Receiver) check(ctx context.Context, name, token, jti string) (*binding, *schemas.SET, []byte, error) {
	b, err := r.binding(name)
	if err != nil {
		return nil, nil, nil, err
	}
	v := b.verifier.Load()
	if v == nil {
		return nil, nil, nil, fmt.Errorf("%w: %s", ErrNotReady, name)
	}
	set, claims, err := v.verify(ctx, token)
	if err == nil && jti != "" && set.ID != jti {
		err = &VerifyError{Code: schemas.ErrInvalidRequest,
			Description: fmt.Sprintf("the SET delivered under %q carries jti %q (RFC 8936 §2.2)", jti, set.ID)}
	}
	if err == nil {
		err = b.checkState(set, r.started)
	}
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			b.count(func(s *Status) { s.Rejected[ve.Code]++ })
			r.obs.SETReceived(name, string(ve.Code))
		}
		return nil, nil, nil, err
	}
	return b, set, claims, nil
}

// accept stores a verified SET, with its claims as they were signed, for handling.
func (r *Receiver) accept(ctx context.Context, b *binding, set *schemas.SET, claims []byte) error {
	now := time.Now()
	key := set.Issuer + "\x00" + set.ID
	if !r.noCache {
		r.pending.Store(key, set)
	}
	fresh, err := r.inbox.Accept(ctx, Entry{Registration: b.name, Issuer: set.Issuer, JTI: set.ID, Claims: claims,
		Received: now}, now.Add(r.window))
	if err != nil || !fresh {
		// Nothing new was stored: drop the parsed copy (Run parses the stored claims of a first delivery that
		// is still waiting, so nothing depends on it).
		r.pending.Delete(key)
		if err != nil {
			return fmt.Errorf("receiver: store SET %s: %w", set.ID, err)
		}
		b.count(func(s *Status) { s.Duplicates++ })
		r.obs.SETReceived(b.name, "duplicate")
		return nil
	}
	b.count(func(s *Status) {
		s.Accepted++
		s.LastEvent = now
		s.LastEventType = set.Event.Type
		if set.Event.Type == schemas.EventStreamUpdated { // the transmitter says it paused, disabled or resumed us
			if p, _, err := set.Event.Decode(); err == nil {
				s.StreamStatus = p.(*schemas.StreamUpdated).Status
			}
		}
	})
	r.obs.SETReceived(b.name, "accepted")
	r.Wake()
	if r.onSET != nil {
		r.onSET()
	}
	return nil
}

// Wake makes Run look at the inbox now: a SET was accepted, here or (in a cluster) by another replica.
func (r *Receiver) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// checkState applies spec/ssf.md VAL-11 to verification events: one without state was sent on the
// transmitter's own initiative and is accepted; one with state must carry a state this receiver asked for.
//
// A verification event with an unknown state that was issued before this receiver started is taken for a
// redelivery of one asked for before a restart (the states asked for live in memory): it is accepted, but not
// counted as a verification.
func (b *binding) checkState(set *schemas.SET, started time.Time) error {
	if set.Event.Type != schemas.EventVerification {
		return nil
	}
	p, _, err := set.Event.Decode()
	if err != nil {
		return &VerifyError{Code: schemas.ErrInvalidRequest, Description: err.Error(), Err: err}
	}
	state := p.(*schemas.Verification).State
	b.mu.Lock()
	defer b.mu.Unlock()
	if state == "" {
		b.st.LastUnsolicitedVerification = time.Now()
		return nil
	}
	if _, ok := b.states[state]; !ok {
		if set.IssuedAt.Time().Before(started.Add(-time.Second)) { // iat has whole seconds
			return nil
		}
		return &VerifyError{Code: schemas.ErrInvalidState, Description: "the verification event's state was not requested by this receiver"}
	}
	b.st.LastVerification = time.Now()
	return nil
}

func (b *binding) count(f func(*Status)) {
	b.mu.Lock()
	f(&b.st)
	b.mu.Unlock()
}

// Run hands accepted SETs to the dispatcher, oldest first, until ctx is done. A SET whose handlers all
// succeeded is removed from the inbox; one whose handlers failed stays and is handed to them again with
// exponential backoff (1 s up to 5 min), surviving restarts. It also forgets expired replay records hourly.
func (r *Receiver) Run(ctx context.Context) error {
	pass := &drainPass{retry: map[uint64]*backoffState{}, seen: map[uint64]bool{}}
	forget := time.NewTicker(time.Hour)
	defer forget.Stop()
	tick := time.NewTimer(0)
	defer tick.Stop()
	for {
		next, more, err := r.drain(ctx, pass)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log.Error("receiver inbox", "err", err)
			pass.restart()
			next, more = time.Second, false
		}
		if more { // a busy inbox: go on with the pass, now and then forgetting expired replay records
			select {
			case <-ctx.Done():
				return nil
			case <-forget.C:
				r.forget(ctx)
			default:
			}
			continue
		}
		if next > 0 {
			// Retries due close together are taken in one pass: each pass reads the whole inbox.
			tick.Reset(max(next, retryGather))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-tick.C:
		case <-forget.C:
			r.forget(ctx)
		}
	}
}

// forget drops the replay records whose window has passed.
func (r *Receiver) forget(ctx context.Context) {
	if n, err := r.inbox.Forget(ctx, time.Now()); err != nil {
		r.log.Error("receiver replay window", "err", err)
	} else if n > 0 {
		r.log.Debug("forgot expired replay records", "count", n)
	}
}

// backoffState is the retry schedule of an entry whose handlers failed, and which of them succeeded already.
type backoffState struct {
	attempts int
	next     time.Time
	done     []bool
}

const (
	retryGather = 500 * time.Millisecond // the least wait before a pass for retries that fall due
	drainPage   = 512                    // entries read at a time
	drainPages  = 8                      // pages one drain call reads before Run looks at its timers again
)

// drainPass is where Run is in its pass over the inbox, oldest entry first, and the retry schedule of the entries
// whose handlers failed. A pass spans several drain calls on a busy inbox, so that it always moves forward.
type drainPass struct {
	retry   map[uint64]*backoffState
	after   uint64          // the pass goes on after this seq
	seen    map[uint64]bool // entries seen in this pass
	soonest time.Duration   // until the earliest backed-off entry seen in this pass is due (0: none)
}

// restart begins a new pass from the oldest entry.
func (p *drainPass) restart() {
	p.after, p.soonest = 0, 0
	clear(p.seen)
}

// drain goes on with the pass: it handles the waiting entries that are not backing off, up to drainPages pages.
// At the end of the inbox it ends the pass and returns how long to wait before the earliest backed-off entry is
// due (0: none); otherwise it reports more.
func (r *Receiver) drain(ctx context.Context, pass *drainPass) (next time.Duration, more bool, err error) {
	retry := pass.retry
	for pages := 0; ; pages++ {
		if pages == drainPages {
			return 0, true, nil
		}
		page, err := r.inbox.Waiting(ctx, pass.after, drainPage)
		if err != nil {
			return 0, false, err
		}
		if len(page) == 0 {
			for seq := range retry {
				if !pass.seen[seq] {
					delete(retry, seq) // handled elsewhere or gone
				}
			}
			next := pass.soonest
			pass.restart()
			return next, false, nil
		}
		var handled []uint64
		for _, e := range page {
			if ctx.Err() != nil {
				break
			}
			pass.after = e.Seq
			pass.seen[e.Seq] = true
			if st := retry[e.Seq]; st != nil && time.Now().Before(st.next) {
				if d := time.Until(st.next); pass.soonest == 0 || d < pass.soonest {
					pass.soonest = d
				}
				continue
			}
			st := retry[e.Seq]
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.hwait)
			took, err := r.handle(hctx, e, st)
			cancel()
			if err != nil {
				if st == nil {
					st = &backoffState{}
					retry[e.Seq] = st
				}
				st.done = took
				st.attempts++
				d := min(time.Second<<min(st.attempts-1, 9), 5*time.Minute)
				st.next = time.Now().Add(d)
				if pass.soonest == 0 || d < pass.soonest {
					pass.soonest = d
				}
				r.log.Warn("SET handler failed; will retry", "registration", e.Registration, "jti", e.JTI,
					"attempt", st.attempts, "retry_in", d, "err", err)
				continue
			}
			delete(retry, e.Seq)
			r.pending.Delete(e.Issuer + "\x00" + e.JTI)
			handled = append(handled, e.Seq)
		}
		if len(handled) > 0 {
			// Record the outcome even when ctx ends now: a handled SET left in the inbox is handled again.
			if err := r.inbox.Handled(context.WithoutCancel(ctx), handled); err != nil {
				return 0, false, err
			}
		}
		if ctx.Err() != nil {
			return 0, false, ctx.Err()
		}
	}
}

// handle dispatches one entry to the handlers that did not take it yet (st.done; st is nil on a first attempt),
// parsing its claims unless this process still holds them parsed, and returns who has taken it now.
func (r *Receiver) handle(ctx context.Context, e Entry, st *backoffState) ([]bool, error) {
	var set *schemas.SET
	if v, ok := r.pending.Load(e.Issuer + "\x00" + e.JTI); ok {
		set = v.(*schemas.SET)
	} else {
		var err error
		if set, err = schemas.ParseSET(e.Claims, schemas.AcceptLegacy()); err != nil {
			// The claims were verified before they were stored; failing now means the file was damaged.
			return nil, fmt.Errorf("receiver: stored SET %s no longer parses: %w", e.JTI, err)
		}
	}
	var done []bool
	if st != nil {
		done = st.done
	}
	done, err := r.disp.dispatch(ctx, Delivery{Registration: e.Registration, SET: set, Received: e.Received}, done)
	r.obs.SETHandled(e.Registration, time.Since(e.Received), err)
	return done, err
}

// Status is what the receiver knows of one registration (GET /api/v1/receiver/status).
type Status struct {
	// Name is the registration's name.
	Name string `json:"name"`
	// Issuer is the transmitter's issuer.
	Issuer string `json:"issuer,omitempty"`
	// StreamID is the stream the registration receives from.
	StreamID string `json:"stream_id,omitempty"`
	// StreamStatus is the stream's status as the transmitter last reported it.
	StreamStatus schemas.StreamStatus `json:"stream_status,omitempty"`
	// Delivery is the stream's delivery method.
	Delivery schemas.DeliveryMethod `json:"delivery,omitempty"`
	// LastVerificationRequested is when the receiver last asked for a verification event.
	LastVerificationRequested time.Time `json:"last_verification_requested,omitzero"`
	// LastVerification is when a verification event carrying a state this receiver asked for last arrived.
	LastVerification time.Time `json:"last_verification,omitzero"`
	// LastUnsolicitedVerification is when a verification event without state last arrived.
	LastUnsolicitedVerification time.Time `json:"last_unsolicited_verification,omitzero"`
	// LastEvent is when the last SET was accepted, and LastEventType its event type.
	LastEvent     time.Time         `json:"last_event,omitzero"`
	LastEventType schemas.EventType `json:"last_event_type,omitempty"`
	// Accepted, Duplicates and Rejected count SETs: accepted for handling, replays acknowledged but not handled
	// again, and refused by RFC 8935 error code.
	Accepted   uint64                       `json:"accepted"`
	Duplicates uint64                       `json:"duplicates"`
	Rejected   map[schemas.ErrorCode]uint64 `json:"rejected"`
	// Error is the last problem keeping the stream healthy, empty when there is none.
	Error string `json:"error,omitempty"`
}

// Backlog counts the SETs accepted and not yet handled: waiting for their first hand-over or for a retry after
// their handlers failed.
func (r *Receiver) Backlog(ctx context.Context) (int, error) { return r.inbox.Len(ctx) }

// UpdateStatus lets the stream keeper record what it learnt of a registration's stream.
func (r *Receiver) UpdateStatus(name string, f func(*Status)) error {
	b, err := r.binding(name)
	if err != nil {
		return err
	}
	b.count(f)
	return nil
}

// Statuses returns the status of every registration, by name.
func (r *Receiver) Statuses() []Status {
	r.mu.RLock()
	bs := make([]*binding, 0, len(r.regs))
	for _, b := range r.regs {
		bs = append(bs, b)
	}
	r.mu.RUnlock()
	out := make([]Status, 0, len(bs))
	for _, b := range bs {
		b.mu.Lock()
		s := b.st
		s.Rejected = maps.Clone(b.st.Rejected)
		b.mu.Unlock()
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
