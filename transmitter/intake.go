package transmitter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/ssfd/ssfd/internal/telemetry"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// EventRequest is one event handed to the intake API (POST /api/v1/events, NATS ssf.intake.<tenant>,
// `ssfd emit`): the event type URI, the subject identifier, the event's claims, and an optional txn.
type EventRequest struct {
	EventType string          `json:"event_type"`
	Subject   json.RawMessage `json:"subject"`
	Event     json.RawMessage `json:"event"`
	Txn       string          `json:"txn,omitempty"`
}

// Event is a validated event ready to be routed: built by ParseEvents or NewEventFor.
type Event struct {
	Subject schemas.Subject
	Event   schemas.Event
	Txn     string
}

// NewEventFor returns an event about subject with payload p, for producers in the same process.
func NewEventFor(subject schemas.Subject, p schemas.Payload, txn string) (Event, error) {
	if subject.IsZero() {
		return Event{}, fmt.Errorf("%w: an event needs a subject", schemas.ErrInvalid)
	}
	ev, err := schemas.NewEvent(p)
	if err != nil {
		return Event{}, err
	}
	return Event{Subject: subject, Event: ev, Txn: txn}, nil
}

// ParseEvents decodes an intake body, one EventRequest object or an array of them, and validates every event
// with package schemas. Every problem is reported with its JSON Pointer (prefixed by the array index for a
// batch); if any event is invalid, none is accepted.
func ParseEvents(body []byte) ([]Event, error) {
	body = bytes.TrimSpace(body)
	var reqs []EventRequest
	batch := len(body) > 0 && body[0] == '['
	if batch {
		if err := json.Unmarshal(body, &reqs); err != nil {
			return nil, BadRequest("the body must be an event object or an array of them: %v", schemas.DescribeJSONError(err))
		}
	} else {
		var one EventRequest
		if err := json.Unmarshal(body, &one); err != nil {
			return nil, BadRequest("the body must be an event object or an array of them: %v", schemas.DescribeJSONError(err))
		}
		reqs = []EventRequest{one}
	}
	if len(reqs) == 0 {
		return nil, BadRequest("the batch holds no event")
	}
	var problems []schemas.Problem
	out := make([]Event, 0, len(reqs))
	for i, r := range reqs {
		prefix := ""
		if batch {
			prefix = fmt.Sprintf("/%d", i)
		}
		ev, ps := r.validate(prefix)
		problems = append(problems, ps...)
		out = append(out, ev)
	}
	if len(problems) > 0 {
		return nil, &Error{Status: 400, Code: "invalid_request", Description: "the event is not valid", Problems: problems}
	}
	return out, nil
}

// validate checks one request and returns the event or its problems under prefix.
func (r EventRequest) validate(prefix string) (Event, []schemas.Problem) {
	var problems []schemas.Problem
	add := func(path string, err error) {
		var ve *schemas.ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				problems = append(problems, schemas.Problem{Path: prefix + path + p.Path, Message: p.Message})
			}
			return
		}
		problems = append(problems, schemas.Problem{Path: prefix + path, Message: err.Error()})
	}
	et, err := schemas.ParseEventType(r.EventType)
	switch {
	case r.EventType == "":
		add("/event_type", fmt.Errorf("is required"))
	case err != nil:
		add("/event_type", fmt.Errorf("is not an event type URI"))
	case et == schemas.EventVerification || et == schemas.EventStreamUpdated:
		add("/event_type", fmt.Errorf("%s events are sent by the transmitter itself", et.Name()))
	case !et.Known():
		add("/event_type", fmt.Errorf("%s is not an event type this transmitter supports", et))
	}
	var subject schemas.Subject
	if len(r.Subject) == 0 {
		add("/subject", fmt.Errorf("is required"))
	} else if subject, err = schemas.ParseSubject(r.Subject); err != nil {
		add("/subject", err)
	}
	payload := r.Event
	if len(payload) == 0 {
		payload = json.RawMessage("{}")
	}
	if et.Known() {
		if p, err := schemas.DecodePayload(et, payload); err != nil {
			add("/event", err)
		} else if ev, err := schemas.NewEvent(p); err == nil {
			return Event{Subject: subject, Event: ev, Txn: r.Txn}, problems
		}
	}
	return Event{}, problems
}

// Accepted says where the SETs of one accepted event went.
type Accepted struct {
	// Txn is the event's txn, generated when the producer gave none.
	Txn string `json:"txn"`
	// SETs lists one SET per stream that carries the event.
	SETs []QueuedSET `json:"sets"`
}

// QueuedSET is a SET durably queued for a stream.
type QueuedSET struct {
	StreamID string `json:"stream_id"`
	JTI      string `json:"jti"`
}

// Emit routes every event to the streams that must carry it, signs one SET per stream, and returns only once
// every SET is durably queued (DESIGN.md data flow): the caller's acknowledgement means nothing is lost. Events
// that no stream carries are accepted with no SETs.
func (t *Transmitter) Emit(ctx context.Context, events []Event) ([]Accepted, error) {
	table, err := t.routes.get(ctx)
	if err != nil {
		return nil, err
	}
	var jobs []sealJob
	out := make([]Accepted, len(events))
	var spans []eventSpan // with tracing on: one per event, from routing to the durable enqueue
	for i, ev := range events {
		txn := ev.Txn
		if txn == "" {
			txn = newJTI()
		}
		out[i] = Accepted{Txn: txn, SETs: []QueuedSET{}}
		if telemetry.Enabled() {
			sctx, end := telemetry.StartEvent(ctx, txn, string(ev.Event.Type))
			spans = append(spans, eventSpan{sctx, end})
		}
		for _, s := range t.match(table, ev.Event.Type, ev.Subject) {
			jobs = append(jobs, sealJob{event: i, stream: s, subject: ev.Subject, payload: ev.Event, txn: txn})
		}
	}
	items, err := t.sealAll(jobs)
	if err != nil {
		for _, sc := range spans {
			sc.end(err)
		}
		return nil, err
	}
	perMethod := map[schemas.DeliveryMethod]int{}
	methods := map[streams.ID]schemas.DeliveryMethod{}
	for i, it := range items {
		acc := &out[jobs[i].event]
		acc.SETs = append(acc.SETs, QueuedSET{StreamID: string(it.Stream), JTI: it.JTI})
		m := jobs[i].stream.Config.Delivery.Method
		perMethod[m]++
		methods[it.Stream] = m
	}
	err = t.enqueue(ctx, items, methods)
	for i, sc := range spans {
		if err == nil {
			for _, q := range out[i].SETs {
				telemetry.Queued(sc.ctx, q.StreamID, q.JTI)
			}
		}
		sc.end(err)
	}
	if err != nil {
		return nil, err
	}
	for m, n := range perMethod {
		t.observer.SETsQueued(m, n)
	}
	return out, nil
}

// eventSpan is the intake span of one event.
type eventSpan struct {
	ctx context.Context
	end func(error)
}

// sealJob is one SET to build: an event for a stream.
type sealJob struct {
	event   int
	stream  *streams.Stream
	subject schemas.Subject
	payload schemas.Event
	txn     string
}

// parallelSealThreshold is the fan-out above which SETs are signed on every CPU: one event for a thousand
// streams should not wait for one core.
const parallelSealThreshold = 32

// sealAll signs every job, in parallel when there are many, and returns the items in job order.
func (t *Transmitter) sealAll(jobs []sealJob) ([]streams.Item, error) {
	items := make([]streams.Item, len(jobs))
	workers := runtime.GOMAXPROCS(0)
	if len(jobs) < parallelSealThreshold || workers == 1 {
		for i, j := range jobs {
			it, err := t.seal(j.stream, j.subject, j.payload, j.txn)
			if err != nil {
				return nil, err
			}
			items[i] = it
		}
		return items, nil
	}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(jobs); i += workers {
				j := jobs[i]
				it, err := t.seal(j.stream, j.subject, j.payload, j.txn)
				if err != nil {
					errs[w] = err
					return
				}
				items[i] = it
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return items, nil
}

// enqueue stores items durably and wakes the long polls and delivery workers of their streams, whose delivery
// methods are in methods. A stream deleted after the routing table was read makes the queue refuse the whole
// call; its SETs are then dropped (a deleted stream holds nothing) and the rest are queued again.
func (t *Transmitter) enqueue(ctx context.Context, items []streams.Item, methods map[streams.ID]schemas.DeliveryMethod) error {
	if len(items) == 0 {
		return nil
	}
	err := t.queue.Enqueue(ctx, items)
	if errors.Is(err, streams.ErrNotFound) {
		t.routes.invalidate()
		if items, err = t.withoutDeletedStreams(ctx, items); err == nil && len(items) > 0 {
			err = t.queue.Enqueue(ctx, items)
		}
	}
	if err != nil {
		return fmt.Errorf("transmitter: queue SETs: %w", err)
	}
	if t.notifier != nil {
		t.notifyQueued(items, methods)
	}
	return nil
}

// notifyQueued wakes whoever waits for SETs of the streams of items, grouped by delivery method.
func (t *Transmitter) notifyQueued(items []streams.Item, methods map[streams.ID]schemas.DeliveryMethod) {
	byMethod := map[schemas.DeliveryMethod][]streams.ID{}
	seen := make(map[streams.ID]bool, len(methods))
	for _, it := range items {
		if !seen[it.Stream] {
			seen[it.Stream] = true
			m := methods[it.Stream]
			byMethod[m] = append(byMethod[m], it.Stream)
		}
	}
	q, ok := t.notifier.(QueueNotifier)
	for m, ids := range byMethod {
		if ok && m != "" {
			q.Queued(m, ids...)
		} else {
			t.notifier.Notify(ids...)
		}
	}
}

// withoutDeletedStreams drops the items of streams that no longer exist.
func (t *Transmitter) withoutDeletedStreams(ctx context.Context, items []streams.Item) ([]streams.Item, error) {
	exists := map[streams.ID]bool{}
	kept := items[:0:0]
	for _, it := range items {
		ok, checked := exists[it.Stream]
		if !checked {
			_, err := t.store.GetStream(ctx, it.Stream)
			if err != nil && !errors.Is(err, streams.ErrNotFound) {
				return nil, err
			}
			ok = err == nil
			exists[it.Stream] = ok
		}
		if ok {
			kept = append(kept, it)
		}
	}
	return kept, nil
}

// IntakeReply is the answer to an intake request that did not come over HTTP (NATS ssf.intake.<tenant>): the
// accepted events, or the error with every problem.
type IntakeReply struct {
	Accepted    []Accepted        `json:"accepted,omitempty"`
	Error       string            `json:"error,omitempty"`
	Description string            `json:"error_description,omitempty"`
	Problems    []schemas.Problem `json:"problems,omitempty"`
}

// HandleIntake parses, validates and emits an intake body (as POST /api/v1/events would) and returns the JSON
// reply. Nothing is queued unless every event is valid; internal errors are reported without their details.
func (t *Transmitter) HandleIntake(ctx context.Context, body []byte) []byte {
	var reply IntakeReply
	events, err := ParseEvents(body)
	if err == nil {
		reply.Accepted, err = t.Emit(ctx, events)
	}
	var pe *Error
	switch {
	case err == nil:
	case errors.As(err, &pe):
		reply.Error, reply.Description, reply.Problems = pe.Code, pe.Description, pe.Problems
	default:
		t.log.Error("intake over NATS failed", "err", err)
		reply.Error, reply.Description = "server_error", "the events could not be queued; send them again"
	}
	out, _ := json.Marshal(reply) // a reply of plain types always encodes
	return out
}
