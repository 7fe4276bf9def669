package server_test

import (
	"net/http"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ssfd/ssfd/internal/telemetry"
	"github.com/ssfd/ssfd/schemas"
)

// TestTracingFollowsAnEventFromIntakeToDelivery: with tracing on, one emitted event gives an intake span and a
// delivery span per stream (poll, push), all in one trace, carrying the event's txn and each SET's jti.
func TestTracingFollowsAnEventFromIntakeToDelivery(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	telemetry.SetEnabled(true)
	t.Cleanup(func() { telemetry.SetEnabled(false); otel.SetTracerProvider(prev) })

	h := newHarness(t, fastRetries)
	rx := newPushReceiver(t)
	h.createPushStream(rx.URL+"/push/acme", "Bearer rx")
	pollStream := h.createPollStream()
	status, body := h.emit(`{"event_type":"https://schemas.openid.net/secevent/caep/event-type/session-revoked",
		"subject":{"format":"email","email":"ada@example.com"},"txn":"txn-traced"}`)
	if status != http.StatusAccepted {
		t.Fatalf("emit: %d %s", status, body)
	}
	waitFor(t, "the push arrived", func() bool { return len(rx.requests()) >= 1 })
	maxEvents := 10
	h.poll(pollStream, schemas.PollRequest{MaxEvents: &maxEvents, ReturnImmediately: true})

	var intake, push, poll int
	var trace string
	jtis := map[string]bool{}
	for _, sp := range exp.GetSpans() {
		attrs := map[string]string{}
		for _, a := range sp.Attributes {
			attrs[string(a.Key)] = a.Value.AsString()
		}
		if attrs[string(telemetry.AttrTxn)] != "txn-traced" {
			continue
		}
		if trace == "" {
			trace = sp.SpanContext.TraceID().String()
		}
		if sp.SpanContext.TraceID().String() != trace {
			t.Fatalf("span %s is in another trace", sp.Name)
		}
		switch sp.Name {
		case "ssfd.emit":
			intake++
			if len(sp.Events) != 2 {
				t.Fatalf("the intake span records %d queued SETs, want 2", len(sp.Events))
			}
		case "ssfd.deliver.push":
			push++
			jtis[attrs[string(telemetry.AttrJTI)]] = true
		case "ssfd.deliver.poll":
			poll++
			jtis[attrs[string(telemetry.AttrJTI)]] = true
		}
	}
	if intake != 1 || push < 1 || poll != 1 || len(jtis) != 2 || jtis[""] {
		t.Fatalf("spans: intake %d, push %d, poll %d, jtis %v", intake, push, poll, jtis)
	}
}
