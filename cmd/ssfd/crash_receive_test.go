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
	// Retry pushes every second at most: with the default backoff (up to 5 min, full jitter) a push stream whose
	// receiver was down for a few seconds may wait longer than this test does.
	txConf := filepath.Join(t.TempDir(), "transmitter.yaml")
	if err := os.WriteFile(txConf, []byte("push_retry_min: 50ms\npush_retry_max: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tx := startSSFD(t, "serve", "--dev", "--config", txConf, "--data-dir", txDir, "--http-addr", "127.0.0.1:0",
		"--nats-listen", "127.0.0.1:0", "--min-verification-interval", "0s")
	tok := adminToken(t, txDir)
	natsURL := tx.natsURL(t)

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
	// Events emitted before a registration's stream exists go to no stream: wait until both are verified.
	waitFor(t, "both registrations verified their streams", rx, func() bool {
		code, out, _ := runCLI(t, "", "receiver", "status", "--url", rx.url, "--token-file", filepath.Join(rxDir, "admin.token"))
		var st struct {
			Registrations []receiver.Status `json:"registrations"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Registrations) != 2 {
			return false
		}
		for _, r := range st.Registrations {
			if r.LastVerification.IsZero() {
				return false
			}
		}
		return true
	})

	prod := startProducers(tx.url, tok, 2)
	waitFor(t, "the receiver republished 100 events", rx, func() bool { return events.total() >= 100 })
	firstRx := rx
	rx.kill() // SIGKILL while SETs are pushed, polled, stored and republished
	atKill := prod.count()
	waitFor(t, "100 more events are accepted while the receiver is down", tx, func() bool { return prod.count() >= atKill+100 })
	rx = startRx(addr)
	waitFor(t, "another 100 events are accepted after the restart", tx, func() bool { return prod.count() >= atKill+200 })
	accepted := prod.halt()

	for deadline := time.Now().Add(60 * time.Second); events.total() < 2*len(accepted); time.Sleep(10 * time.Millisecond) {
		if time.Now().Before(deadline) {
			continue
		}
		missing := map[string]int{}
		events.mu.Lock()
		for txn := range accepted {
			for _, reg := range []string{"via-push", "via-poll"} {
				if events.seen[reg+" "+txn] == 0 {
					missing[reg]++
				}
			}
		}
		events.mu.Unlock()
		_, status, _ := runCLI(t, "", "receiver", "status", "--url", rx.url, "--token-file", filepath.Join(rxDir, "admin.token"))
		_, streamsOut, _ := runCLI(t, "", "stream", "list", "--url", tx.url, "--token", tok)
		var missingTxns []string
		events.mu.Lock()
		for txn := range accepted {
			if events.seen["via-poll "+txn] == 0 {
				missingTxns = append(missingTxns, txn)
			}
		}
		events.mu.Unlock()
		t.Fatalf("%d of %d events arrived; missing by registration %v (poll: %v)\nreceiver status: %s\nstreams: %s\ntransmitter:\n%s\nkilled receiver:\n%s\nreceiver:\n%s",
			events.total(), 2*len(accepted), missing, missingTxns, status, streamsOut, tx.logs, firstRx.logs, rx.logs)
	}
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

// natsURL waits for the banner line of the child's embedded NATS server and returns its URL.
func (c *child) natsURL(t *testing.T) string {
	t.Helper()
	const label = "embedded NATS"
	var url string
	waitFor(t, "the banner names the NATS server", c, func() bool {
		out := c.logs.String()
		i := strings.Index(out, label)
		if i < 0 || !strings.Contains(out[i:], "\n") {
			return false
		}
		url = strings.TrimSpace(strings.SplitN(out[i+len(label):], "\n", 2)[0])
		return true
	})
	return url
}
