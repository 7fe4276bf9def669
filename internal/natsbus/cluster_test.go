package natsbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/internal/natsbus"
)

// TestClusterKeepsR3StreamAcrossANodeLoss starts a real three-node JetStream cluster, writes to an R3 stream,
// stops one node and checks the stream still takes writes and holds every message.
func TestClusterKeepsR3StreamAcrossANodeLoss(t *testing.T) {
	c, err := natsbus.StartCluster(3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(n int) {
		for range n {
			for {
				if _, err := js.Publish(ctx, "t.x", []byte("m")); err == nil {
					break
				} else if ctx.Err() != nil {
					t.Fatalf("publish: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	publish(10)
	c.StopNode(0)
	publish(10)
	var msgs uint64
	for ctx.Err() == nil {
		if info, err := st.Info(ctx); err == nil {
			msgs = info.State.Msgs
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if msgs != 20 {
		t.Fatalf("stream holds %d messages after a node loss, want 20", msgs)
	}
	if err := c.RestartNode(0); err != nil {
		t.Fatal(err)
	}
}
