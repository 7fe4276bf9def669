package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/receiver"
)

// TestReceiveCrashLosesNoEventAndRepublishesNone runs `ssfd serve` as the transmitter and `ssfd receive` with a
// push and a poll registration, kills the receiver with SIGKILL while events flow, and restarts it on the same
// data directory and address. Every event the transmitter accepted reaches the JetStream stream of verified
// events exactly once per registration: nothing acknowledged by the receiver is lost, and what it handled again
// after the crash is dropped as a duplicate by its Nats-Msg-Id (VAL-12, VAL-13).
func TestReceiveCrashLosesNoEventAndRepublishesNone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	txDir, rxDir := t.TempDir(), t.TempDir()
	tx := startChild(t, txDir, "127.0.0.1:0")
	tok := adminToken(t, txDir)
	natsURL := strings.TrimSpace(strings.SplitN(strings.SplitN(tx.logs.String(), "embedded NATS", 2)[1], "\n", 2)[0])

	conf := filepath.Join(t.TempDir(), "receiver.yaml")
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "receiver:\n  registrations:\n")
	for _, d := range []string{"push", "poll"} {
		fmt.Fprintf(&yaml, "    - name: via-%s\n      issuer: %s\n      token: %s\n      delivery: %s\n      events: [session-revoked]\n",
			d, tx.url, tok, d)
	}
	if err := os.WriteFile(conf, []byte(yaml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	startRx := func(addr string) *child {
		return startSSFD(t, "receive", "--dev", "--config", conf, "--data-dir", rxDir, "--http-addr", addr, "--nats-url", natsURL)
	}
	rx := startRx("127.0.0.1:0")
	addr := rx.addr()
	events := followEvents(t, natsURL)

	prod := startProducers(tx.url, tok, 2)
	waitFor(t, "the receiver republished 100 events", rx, func() bool { return events.total() >= 100 })
	rx.kill() // SIGKILL while SETs are pushed, polled, stored and republished
	atKill := prod.count()
	waitFor(t, "100 more events are accepted while the receiver is down", tx, func() bool { return prod.count() >= atKill+100 })
	rx = startRx(addr)
	waitFor(t, "another 100 events are accepted after the restart", tx, func() bool { return prod.count() >= atKill+200 })
	accepted := prod.halt()

	waitFor(t, "every accepted event arrived through both registrations", rx, func() bool {
		return events.total() >= 2*len(accepted)
	})
	code, out, errOut := runCLI(t, "", "receiver", "status", "--url", rx.url, "--token-file", filepath.Join(rxDir, "admin.token"))
	if code != 0 || !strings.Contains(out, `"name": "via-push"`) || !strings.Contains(out, `"name": "via-poll"`) ||
		!strings.Contains(out, `"backlog"`) {
		t.Fatalf("ssfd receiver status: %d %s %s", code, out, errOut)
	}
	follow := startTool(t, "receiver", "events", "--type", "session-revoked", "--nats-url", natsURL)
	waitFor(t, "ssfd receiver events prints the republished events", rx, func() bool {
		return strings.Count(follow.String(), `"event_type":"https://schemas.openid.net/secevent/caep/event-type/session-revoked"`) >= 2*len(accepted)
	})
	events.mu.Lock()
	defer events.mu.Unlock()
	for txn := range accepted {
		for _, reg := range []string{"via-push", "via-poll"} {
			if n := events.seen[reg+" "+txn]; n != 1 {
				t.Errorf("event %s reached JetStream %d times through %s, want exactly once", txn, n, reg)
			}
		}
	}
	if events.n != 2*len(accepted) {
		t.Errorf("JetStream holds %d events, want %d", events.n, 2*len(accepted))
	}
	t.Logf("%d events accepted by the transmitter, each republished once per registration across SIGKILL", len(accepted))
}

// eventCounter follows StreamEvents with an ordered consumer and counts each (registration, txn).
type eventCounter struct {
	mu   sync.Mutex
	seen map[string]int
	n    int
}

func (c *eventCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func followEvents(t *testing.T, url string) *eventCounter {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c := &eventCounter{seen: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var cons jetstream.Consumer
	for range 3000 { // the receiver creates the stream when it starts
		if cons, err = js.OrderedConsumer(ctx, natsbus.StreamEvents, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{natsbus.SubjectEventsPrefix + "session-revoked"}}); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var e receiver.EventMessage
		if err := json.Unmarshal(m.Data(), &e); err != nil {
			t.Errorf("an event that is not JSON: %s", m.Data())
			return
		}
		c.mu.Lock()
		c.seen[e.Registration+" "+e.Txn]++
		c.n++
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return c
}
