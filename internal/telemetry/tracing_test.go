package telemetry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/telemetry"
)

// install puts an in-memory exporter behind the global provider with the ratio sampler, for one test.
func install(t *testing.T, ratio float64) *tracetest.InMemoryExporter {
	exp := tracetest.NewInMemoryExporter()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(telemetry.Sampler(ratio))))
	telemetry.SetEnabled(true)
	t.Cleanup(func() { telemetry.SetEnabled(false); otel.SetTracerProvider(prev) })
	return exp
}

// signedSET returns a compact SET carrying txn.
func signedSET(t *testing.T, txn string) string {
	t.Helper()
	r, err := keys.NewRing(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	set, err := r.Sign([]byte(`{"iss":"https://tx","jti":"j1","iat":1,"txn":"`+txn+`"}`), keys.TypeSET)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestAnEventIsSampledWholeOrNotAtAll(t *testing.T) {
	for _, tc := range []struct {
		ratio float64
		want  int
	}{{0, 0}, {1, 2}} {
		exp := install(t, tc.ratio)
		ctx, end := telemetry.StartEvent(context.Background(), "txn-1", "session-revoked")
		telemetry.Queued(ctx, "stream-1", "j1")
		end(nil)
		telemetry.Delivery(context.Background(), "push", "stream-1", "j1", signedSET(t, "txn-1"), "delivered", time.Now())
		spans := exp.GetSpans()
		if len(spans) != tc.want {
			t.Fatalf("ratio %v: %d spans, want %d", tc.ratio, len(spans), tc.want)
		}
		if tc.want == 2 && spans[0].SpanContext.TraceID() != spans[1].SpanContext.TraceID() {
			t.Fatal("the intake and the delivery of one event are in different traces")
		}
	}
}

func TestARefusedEventEndsItsSpanWithAnError(t *testing.T) {
	exp := install(t, 1)
	_, end := telemetry.StartEvent(context.Background(), "txn-2", "session-revoked")
	end(errors.New("disk full"))
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Status.Code != codes.Error || len(spans[0].Events) != 1 {
		t.Fatalf("spans = %+v", spans)
	}
}

func TestOffCostsNothing(t *testing.T) {
	telemetry.SetEnabled(false)
	ctx := context.Background()
	got, end := telemetry.StartEvent(ctx, "txn", "x")
	end(nil)
	if got != ctx {
		t.Fatal("StartEvent changed the context with tracing off")
	}
}
