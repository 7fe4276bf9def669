package receiver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// Delivery is one verified SET handed to handlers: the registration it came through and its claims.
type Delivery struct {
	// Registration names the transmitter registration the SET came through.
	Registration string
	// SET holds the verified claims; SET.Event carries the event type and its raw payload.
	SET *schemas.SET
	// Received is when the receiver accepted the SET.
	Received time.Time
}

// Handler acts on one verified SET. Handlers must be idempotent: delivery is at-least-once, and a SET whose
// handling failed is handed to every handler again.
type Handler func(ctx context.Context, d Delivery) error

// Dispatcher routes verified SETs to the handlers registered for their event type, and to the handlers
// registered for every type. It is safe for concurrent use; register handlers before the receiver starts (a retry
// knows which handlers already took a SET by their order, which a handler added later would shift).
type Dispatcher struct {
	mu     sync.RWMutex
	byType map[schemas.EventType][]Handler
	all    []Handler
}

// NewDispatcher returns a Dispatcher with no handlers.
func NewDispatcher() *Dispatcher {
	return &Dispatcher{byType: map[schemas.EventType][]Handler{}}
}

// On registers fn for the event type of P, called with the payload decoded and validated, for example
//
//	receiver.On(d, func(ctx context.Context, d receiver.Delivery, e *schemas.SessionRevoked) error { ... })
//
// P is the pointer type of one of the payloads in package schemas.
func On[P schemas.Payload](d *Dispatcher, fn func(ctx context.Context, d Delivery, event P) error) {
	var zero P // a nil pointer: EventType has a pointer receiver and reads nothing
	t := zero.EventType()
	d.Handle(t, func(ctx context.Context, dl Delivery) error {
		p, _, err := dl.SET.Event.Decode()
		if err != nil {
			return fmt.Errorf("receiver: decode %s: %w", t, err)
		}
		typed, ok := p.(P)
		if !ok {
			return fmt.Errorf("receiver: %s decoded as %T", t, p)
		}
		return fn(ctx, dl, typed)
	})
}

// Handle registers h for SETs of event type t; t may be an event type this package does not know.
func (d *Dispatcher) Handle(t schemas.EventType, h Handler) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.byType[t] = append(d.byType[t], h)
}

// HandleAll registers h for every SET, whatever its event type (sinks use this).
func (d *Dispatcher) HandleAll(h Handler) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.all = append(d.all, h)
}

// Dispatch calls every handler that matches the SET's event type, in registration order (typed handlers
// first), and returns their errors joined. Every handler runs even when an earlier one failed, so that one
// broken sink does not starve the others.
func (d *Dispatcher) Dispatch(ctx context.Context, dl Delivery) error {
	_, err := d.dispatch(ctx, dl, nil)
	return err
}

// dispatch is Dispatch that skips the handlers whose index (in the order Dispatch calls them) is set in done, and
// returns done with the handlers that succeeded now added: a SET handed over again after a failure is not handed
// again to the handlers that already took it (a sink would publish it twice).
func (d *Dispatcher) dispatch(ctx context.Context, dl Delivery, done []bool) ([]bool, error) {
	d.mu.RLock()
	typed, all := d.byType[dl.SET.Event.Type], d.all
	d.mu.RUnlock()
	n := len(typed) + len(all)
	if done != nil && len(done) < n {
		done = append(done, make([]bool, n-len(done))...)
	}
	var errs []error
	var failed []int // only a SET that will be retried needs a record of who took it
	for i := range n {
		if done != nil && done[i] {
			continue
		}
		var h Handler
		if i < len(typed) {
			h = typed[i]
		} else {
			h = all[i-len(typed)]
		}
		err := callHandler(ctx, h, dl)
		switch {
		case err != nil:
			errs, failed = append(errs, err), append(failed, i)
		case done != nil:
			done[i] = true
		}
	}
	if len(failed) > 0 && done == nil {
		done = make([]bool, n)
		for i := range done {
			done[i] = true
		}
		for _, i := range failed {
			done[i] = false
		}
	}
	return done, errors.Join(errs...)
}

// callHandler turns a handler's panic into an error, so that one bad handler cannot stop the receiver.
func callHandler(ctx context.Context, h Handler, dl Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("receiver: handler panicked: %v", r)
		}
	}()
	return h(ctx, dl)
}
