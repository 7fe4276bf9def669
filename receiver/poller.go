package receiver

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// ReceiveAll receives a batch of SETs for registration name, verifying them on every core at once and storing
// them together (one group commit for the batch rather than one per core), and returns one error per SET, in
// order (nil: acknowledge it).
func (r *Receiver) ReceiveAll(ctx context.Context, name string, tokens []string) []error {
	return r.receiveAll(ctx, name, tokens, nil)
}

// receiveAll is ReceiveAll; when jtis is not nil, SET i must carry jtis[i] (the key it was delivered under).
func (r *Receiver) receiveAll(ctx context.Context, name string, tokens, jtis []string) []error {
	errs := make([]error, len(tokens))
	var stores sync.WaitGroup
	one := func(i int) {
		want := ""
		if jtis != nil {
			want = jtis[i]
		}
		b, set, claims, err := r.check(ctx, name, tokens[i], want)
		if err != nil {
			errs[i] = err
			return
		}
		stores.Go(func() { errs[i] = r.accept(ctx, b, set, claims) }) // verify the next SET while this one is stored
	}
	workers := min(len(tokens), runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range tokens {
			one(i)
		}
		stores.Wait()
		return errs
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				one(i)
			}
		})
	}
	for i := range tokens {
		next <- i
	}
	close(next)
	wg.Wait()
	stores.Wait()
	return errs
}

// Poller receives one stream's SETs by RFC 8936 polling: long polls, acknowledges each SET in the next request
// once the receiver stored it, reports refused SETs in setErrs with their code, polls again at once when more
// are available, and backs off exponentially (1 s to 1 min) after an error.
type Poller struct {
	r         *Receiver
	name      string
	client    *Client
	endpoint  string
	maxEvents int
	onError   func(error)
}

// PollerOption configures a Poller.
type PollerOption func(*Poller)

// WithMaxEvents sets maxEvents of each poll (default 256).
func WithMaxEvents(n int) PollerOption { return func(p *Poller) { p.maxEvents = n } }

// WithPollErrors calls f with every error a poll ends with (for status reporting); f must not block.
func WithPollErrors(f func(error)) PollerOption { return func(p *Poller) { p.onError = f } }

// NewPoller returns a Poller for registration name that polls endpoint (the stream's delivery.endpoint_url,
// used exactly as given) with client's credentials.
func NewPoller(r *Receiver, name string, client *Client, endpoint string, opts ...PollerOption) *Poller {
	p := &Poller{r: r, name: name, client: client, endpoint: endpoint, maxEvents: 256, onError: func(error) {}}
	for _, opt := range opts {
		opt(p)
	}
	return p
}

// Run polls until ctx is done; on the way out it sends the acknowledgements it still holds in an
// acknowledge-only request (maxEvents 0, returnImmediately).
func (p *Poller) Run(ctx context.Context) error {
	var acks []string
	errs := map[string]schemas.SETError{}
	delay := time.Duration(0)
	for ctx.Err() == nil {
		resp, err := p.client.Poll(ctx, p.endpoint, schemas.PollRequest{MaxEvents: &p.maxEvents, Ack: acks, SetErrs: errs})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			p.onError(err)
			delay = min(max(2*delay, time.Second), time.Minute)
			p.r.log.Warn("poll failed; backing off", "registration", p.name, "retry_in", delay, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
			continue // acks and errors are sent again: applying them twice is harmless (RFC 8936 §2.4)
		}
		var later int
		acks, errs, later = p.receive(ctx, resp)
		if later == 0 {
			delay = 0
			continue
		}
		// Some SETs could be neither stored nor refused (the transmitter's JWKS or the store is unavailable): the
		// transmitter will return them on the next poll, so wait before it rather than ask again at once.
		delay = min(max(2*delay, time.Second), time.Minute)
		p.r.log.Warn("SETs could not be taken now; polling again later", "registration", p.name, "count", later,
			"retry_in", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
	if len(acks) > 0 || len(errs) > 0 {
		zero := 0
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := p.client.Poll(fctx, p.endpoint, schemas.PollRequest{MaxEvents: &zero, ReturnImmediately: true,
			Ack: acks, SetErrs: errs}); err != nil {
			p.r.log.Warn("final acknowledgement failed; the SETs will be delivered again and de-duplicated",
				"registration", p.name, "err", err)
		}
	}
	return nil
}

// receive stores the SETs of one poll response and returns what the next request acknowledges and reports, and
// how many SETs could be neither stored nor refused now: those are not acknowledged or reported, so the
// transmitter delivers them again.
func (p *Poller) receive(ctx context.Context, resp *schemas.PollResponse) (acks []string, errs map[string]schemas.SETError, later int) {
	jtis := make([]string, 0, len(resp.Sets))
	tokens := make([]string, 0, len(resp.Sets))
	for jti, set := range resp.Sets {
		jtis, tokens = append(jtis, jti), append(tokens, set)
	}
	acks = make([]string, 0, len(jtis))
	errs = map[string]schemas.SETError{}
	for i, err := range p.r.receiveAll(ctx, p.name, tokens, jtis) {
		var ve *VerifyError
		switch {
		case err == nil:
			acks = append(acks, jtis[i])
		case errors.As(err, &ve):
			errs[jtis[i]] = ve.SETError()
		default:
			later++
			p.onError(err)
		}
	}
	return acks, errs, later
}
