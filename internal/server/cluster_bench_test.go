package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
)

// BenchmarkClusterDelivery: emit → pushed to a loopback sink over 20 push streams, on one node with bbolt and
// on a three-node in-process JetStream cluster (R3) with 1, 2 and 3 ssfd replicas, events emitted through the
// replicas in turn. On two cores every replica and NATS node shares the same CPUs: the figures show the shape
// of the curve and the price of replication, not how a cluster of machines scales.
func BenchmarkClusterDelivery(b *testing.B) {
	const streams = 20
	run := func(b *testing.B, hs []*harness) {
		s := &sink{arrived: map[string][]time.Time{}}
		rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			s.record(jtiOf(body))
			w.WriteHeader(http.StatusAccepted)
		}))
		defer rx.Close()
		deliveryBenchOn(b, hs, streams, func(int) {
			if _, err := hs[0].client.CreateStream(context.Background(), receiver.StreamRequest{
				EventsRequested: []schemas.EventType{schemas.EventSessionRevoked},
				Delivery:        &schemas.Delivery{Method: schemas.DeliveryPush, EndpointURL: rx.URL}}); err != nil {
				b.Fatal(err)
			}
		}, s)
	}
	b.Run("store=bolt", func(b *testing.B) { run(b, []*harness{newHarness(b, es256)}) })
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("store=jetstream/replicas=%d", n), func(b *testing.B) {
			c := newTestCluster(b, n, es256, func(c *config.Config) { c.PushRetryMin, c.PushRetryMax = time.Second, 5*time.Second })
			// Every replica takes its share of the streams before the clock starts.
			waitFor(b, "the push leases are shared", func() bool { return c.leasesSettled() })
			run(b, c.replicas)
		})
	}
}
