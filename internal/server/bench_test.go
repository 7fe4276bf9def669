package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/transmitter"
)

// BenchmarkPollWithAck measures RFC 8936 delivery over HTTP on loopback: SETs/s drained from one stream by a
// receiver that polls up to 500 SETs at a time and acknowledges each batch in its next request.
func BenchmarkPollWithAck(b *testing.B) {
	h := newHarness(b, func(c *config.Config) { c.SigningAlgorithms = []string{"ES256"} })
	cfg := h.createPollStream()
	subject, _ := schemas.NewEmail("ada@example.com")
	ev, err := transmitter.NewEventFor(subject, &schemas.SessionRevoked{}, "")
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]transmitter.Event, 500)
	for i := range batch {
		batch[i] = ev
	}
	ctx := context.Background()
	for queued := 0; queued < b.N; queued += len(batch) {
		if _, err := h.srv.Transmitter().Emit(ctx, batch[:min(len(batch), b.N-queued)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	max, got := 500, 0
	var ack []string
	for got < b.N {
		resp := h.poll(cfg, schemas.PollRequest{MaxEvents: &max, ReturnImmediately: true, Ack: ack})
		if len(resp.Sets) == 0 {
			b.Fatalf("drained %d of %d", got, b.N)
		}
		ack = ack[:0]
		for jti := range resp.Sets {
			ack = append(ack, jti)
		}
		got += len(resp.Sets)
	}
	b.ReportMetric(float64(got)/time.Since(start).Seconds(), "SETs/s")
}
