package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/config"
)

// BenchmarkClusterDelivery: emit → pushed to a loopback sink over 20 push streams, on one node with bbolt and
// on a three-node in-process JetStream cluster (R3) with 1, 2 and 3 ssfd replicas, events emitted through the
// replicas in turn. On two cores every replica and NATS node shares the same CPUs: the figures show the shape
// of the curve and the price of replication, not how a cluster of machines scales.
func BenchmarkClusterDelivery(b *testing.B) {
	const streams = 20
	b.Run("store=bolt", func(b *testing.B) { pushBench(b, []*harness{newHarness(b, es256)}, streams) })
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("store=jetstream/replicas=%d", n), func(b *testing.B) {
			c := newTestCluster(b, n, es256, func(c *config.Config) { c.PushRetryMin, c.PushRetryMax = time.Second, 5*time.Second })
			// Every replica takes its share of the streams before the clock starts.
			waitFor(b, "the push leases are shared", func() bool { return c.leasesSettled() })
			pushBench(b, c.replicas, streams)
		})
	}
}
