package natsbus_test

import (
	"context"
	"strconv"
	"strings"
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
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3,
		Storage: jetstream.FileStorage, Duplicates: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sent := 0 // message ids: a publish retried after a lost answer is stored once
	publish := func(n int) {
		for range n {
			for {
				// Each attempt gets its own deadline: a publish sent while the client reconnects may never be
				// answered, and must not wait out the whole test.
				actx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := js.Publish(actx, "t.x", []byte("m"), jetstream.WithMsgID(strconv.Itoa(sent)))
				cancel()
				if err == nil {
					break
				} else if ctx.Err() != nil {
					t.Fatalf("publish: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			sent++
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

// TestRedactHidesNATSCredentials: passwords and tokens in a NATS URL list never reach an error or a log.
func TestRedactHidesNATSCredentials(t *testing.T) {
	got := natsbus.Redact("nats://ssfd:s3cret@a:4222, nats://t0ken@b:4222,nats://c:4222")
	if strings.Contains(got, "s3cret") || strings.Contains(got, "t0ken") || !strings.Contains(got, "nats://ssfd:") {
		t.Fatalf("Redact = %s", got)
	}
	if !strings.Contains(got, "nats://c:4222") {
		t.Fatalf("Redact dropped a URL without credentials: %s", got)
	}
}
