// Package telemetry is ssfd's optional OpenTelemetry tracing: spans that follow one event from intake to each
// delivery, carrying the SET's jti and the event's txn. It is off by default; when off, every function here is a
// no-op costing a branch.
//
// The queue stores SETs, not trace contexts, so the spans of one event find each other through its txn: the
// trace id and the parent span id are derived from the txn (EventContext), and every span of the event, at intake
// and at each delivery, hangs below that same (unexported) parent in one trace.
package telemetry

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/ssfd/ssfd/internal/keys"
)

// The attributes ssfd puts on its spans.
const (
	AttrTxn       = attribute.Key("ssf.txn")
	AttrJTI       = attribute.Key("ssf.jti")
	AttrStream    = attribute.Key("ssf.stream_id")
	AttrEventType = attribute.Key("ssf.event_type")
	AttrOutcome   = attribute.Key("ssf.outcome")
)

var enabled atomic.Bool

// Enabled reports whether tracing is on.
func Enabled() bool { return enabled.Load() }

// SetEnabled turns tracing on or off with the global tracer provider as it is (tests install an in-memory one).
func SetEnabled(on bool) { enabled.Store(on) }

// Setup turns tracing on, exporting spans over OTLP/HTTP to endpoint (a URL such as
// http://collector:4318/v1/traces), sampling ratio of the events (by txn, so an event is traced whole or not at
// all). It returns the function that flushes and stops the exporter.
func Setup(ctx context.Context, endpoint string, ratio float64, version string) (func(context.Context) error, error) {
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", "ssfd"), attribute.String("service.version", version)))
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(Sampler(ratio)))
	otel.SetTracerProvider(tp)
	enabled.Store(true)
	return func(ctx context.Context) error {
		enabled.Store(false)
		return tp.Shutdown(ctx)
	}, nil
}

// Sampler samples a share ratio of the events: by trace id alone, which EventContext derives from the txn, so an
// event's spans are all kept or all dropped (a parent-based sampler would keep them all: their parent is marked
// sampled).
func Sampler(ratio float64) sdktrace.Sampler { return sdktrace.TraceIDRatioBased(ratio) }

func tracer() trace.Tracer { return otel.Tracer("github.com/ssfd/ssfd") }

// EventContext returns ctx carrying the event's trace: a remote parent whose trace and span ids are derived from
// txn, so that the intake span and every delivery span of the event share one trace.
func EventContext(ctx context.Context, txn string) context.Context {
	sum := sha256.Sum256([]byte("ssfd txn " + txn))
	var tid trace.TraceID
	var sid trace.SpanID
	copy(tid[:], sum[:16])
	copy(sid[:], sum[16:24])
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// StartEvent starts the intake span of one event; end it with the returned function, passing the error that
// refused the event, if any. No-op when tracing is off.
func StartEvent(ctx context.Context, txn, eventType string) (context.Context, func(error)) {
	if !Enabled() {
		return ctx, func(error) {}
	}
	ctx, span := tracer().Start(EventContext(ctx, txn), "ssfd.emit", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(AttrTxn.String(txn), AttrEventType.String(eventType)))
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "the event was not queued")
		}
		span.End()
	}
}

// Queued records on the intake span that a SET of the event was durably queued for a stream.
func Queued(ctx context.Context, streamID, jti string) {
	if !Enabled() {
		return
	}
	trace.SpanFromContext(ctx).AddEvent("queued", trace.WithAttributes(AttrStream.String(streamID), AttrJTI.String(jti)))
}

// Delivery records one delivery attempt of a SET (method push, poll or nats) that started at start, with its
// outcome, in the trace of the SET's event: the txn is read from the SET, without verifying it (the transmitter
// signed it).
func Delivery(ctx context.Context, method, streamID, jti, set, outcome string, start time.Time) {
	if !Enabled() {
		return
	}
	txn := txnOf(set)
	_, span := tracer().Start(EventContext(ctx, txn), "ssfd.deliver."+method, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithTimestamp(start),
		trace.WithAttributes(AttrTxn.String(txn), AttrJTI.String(jti), AttrStream.String(streamID), AttrOutcome.String(outcome)))
	span.End()
}

// txnOf reads the txn claim of a compact SET, "" when it has none.
func txnOf(set string) string {
	_, payload, err := keys.Decode(set)
	if err != nil {
		return ""
	}
	var claims struct {
		Txn string `json:"txn"`
	}
	_ = json.Unmarshal(payload, &claims)
	return claims.Txn
}
