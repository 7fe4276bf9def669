package jetstream_test

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/storage/jetstream"
)

// cluster is the real three-node JetStream cluster every test of this package runs against.
var cluster *natsbus.Cluster

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ssfd-jetstream-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cluster, err = natsbus.StartCluster(3, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cluster.Shutdown()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// connect opens a client connection to the whole cluster, closed when t ends.
func connect(t testing.TB) *nats.Conn {
	t.Helper()
	return dial(t, cluster.URLs())
}

// dial opens a client connection to urls that reconnects forever, closed when t ends.
func dial(t testing.TB, urls string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

var prefixes atomic.Int64

// options returns R3 options with a prefix of its own, so that every test gets fresh streams and buckets.
func options() jetstream.Options {
	return jetstream.Options{Replicas: 3, Prefix: fmt.Sprintf("T%d", prefixes.Add(1))}
}

// connectTo opens a client connection to node i of the cluster only, closed when t ends.
func connectTo(t testing.TB, i int) *nats.Conn {
	t.Helper()
	return dial(t, cluster.URL(i))
}
