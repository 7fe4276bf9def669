package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/internal/server"
	"github.com/ssfd/ssfd/receiver"
)

// freeAddr returns a loopback address nobody listens on, for a server that must keep its address across a
// restart (the transmitter pushes to it).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// receiverNode is a receiver-only ssfd that can be stopped and started again on the same data and address.
type receiverNode struct {
	t   *testing.T
	cfg config.Config
	srv *server.Server
}

func newReceiverNode(t *testing.T, tx *harness, regs ...config.Registration) *receiverNode {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = freeAddr(t)
	cfg.NATSURL = tx.srv.NATSURL() // the events are republished on the transmitter's NATS, which outlives this node
	cfg.Dev = true
	cfg.ReceiverOnly = true
	cfg.Receiver.Registrations = regs
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n := &receiverNode{t: t, cfg: cfg}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *receiverNode) start() {
	n.t.Helper()
	srv, err := server.New(n.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		n.t.Fatal(err)
	}
	n.srv = srv
	go func() { _ = srv.Serve() }()
}

func (n *receiverNode) stop() {
	if n.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.srv.Shutdown(ctx)
	n.srv = nil
}

// waitVerified waits until every registration has its stream and saw the verification event it asked for.
func (n *receiverNode) waitVerified() {
	n.t.Helper()
	waitFor(n.t, "every registration verified its stream", func() bool {
		st := n.statuses()
		for _, s := range st {
			if s.StreamID == "" || s.LastVerification.IsZero() {
				return false
			}
		}
		return len(st) == len(n.cfg.Receiver.Registrations)
	})
}

func (n *receiverNode) statuses() []receiver.Status {
	if n.srv == nil {
		return nil
	}
	return n.srv.Receiver().Statuses()
}

// eventLog records the EventMessages seen on ssf.events.session-revoked, by registration and txn.
type eventLog struct {
	mu   sync.Mutex
	seen map[string]int
	n    int
}

func (l *eventLog) add(t *testing.T, data []byte) {
	var m receiver.EventMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Errorf("an event message that is not JSON: %s", data)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[m.Registration+" "+m.Txn]++
	l.n++
}

func (l *eventLog) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// check fails unless every (registration, txn) was seen exactly once.
func (l *eventLog) check(t *testing.T, who string, regs, txns []string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range regs {
		for _, x := range txns {
			if got := l.seen[r+" "+x]; got != 1 {
				t.Errorf("%s saw %s of %s %d times, want exactly once", who, x, r, got)
			}
		}
	}
	if l.n != len(regs)*len(txns) {
		t.Errorf("%s saw %d events, want %d", who, l.n, len(regs)*len(txns))
	}
}

// subscribe follows ssf.events.session-revoked twice: a plain NATS subscription and a JetStream ordered consumer.
func subscribe(t *testing.T, nc *nats.Conn) (plain, durable *eventLog) {
	t.Helper()
	plain, durable = &eventLog{seen: map[string]int{}}, &eventLog{seen: map[string]int{}}
	sub, err := nc.Subscribe(natsbus.SubjectEventsPrefix+"session-revoked", func(m *nats.Msg) { plain.add(t, m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		// The receiver creates the stream when it starts; the consumer follows it from its first message.
		for ctx.Err() == nil {
			cons, err := js.OrderedConsumer(ctx, natsbus.StreamEvents, jetstream.OrderedConsumerConfig{
				FilterSubjects: []string{natsbus.SubjectEventsPrefix + "session-revoked"}})
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			cc, err := cons.Consume(func(m jetstream.Msg) { durable.add(t, m.Data()) })
			if err != nil {
				t.Error(err)
				return
			}
			<-ctx.Done()
			cc.Stop()
		}
	}()
	return plain, durable
}

// TestReceiverEndToEndExactlyOnceAcrossRestartAndKeyRotation runs our transmitter and a receiver-only ssfd with
// a push, a poll and a NATS registration. Events emitted before, during and after a graceful restart of the
// receiver, and around a key rotation at the transmitter, each reach a NATS subscriber on
// ssf.events.session-revoked exactly once per registration.
func TestReceiverEndToEndExactlyOnceAcrossRestartAndKeyRotation(t *testing.T) {
	tx := newHarness(t, fastRetries)
	reg := func(name, delivery string) config.Registration {
		return config.Registration{Name: name, Issuer: tx.issuer, Token: tx.token, Delivery: delivery,
			Events: []string{"session-revoked"}, PushAuthorization: "Bearer rx-" + name}
	}
	regs := []string{"via-push", "via-poll", "via-nats"}
	rx := newReceiverNode(t, tx, reg("via-push", "push"), reg("via-poll", "poll"), reg("via-nats", "nats"))
	rx.waitVerified()
	plain, durable := subscribe(t, tx.natsConn())

	var txns []string
	txns = append(txns, emitTxns(t, tx, 20, "before")...)
	waitFor(t, "the first events arrived", func() bool { return plain.total() >= 3 })
	rx.stop() // mid-stream: some SETs are handled, some stored but not handled, some not yet received
	txns = append(txns, emitTxns(t, tx, 20, "while-down")...)
	rx.start()
	rx.waitVerified() // the restarted receiver has fetched the transmitter's JWKS
	txns = append(txns, emitTxns(t, tx, 10, "before-rotation")...)
	if err := tx.srv.RotateKeys(); err != nil { // SETs signed by the old key are still being delivered
		t.Fatal(err)
	}
	txns = append(txns, emitTxns(t, tx, 10, "after-rotation")...)

	want := len(regs) * len(txns)
	for range 1000 {
		if plain.total() >= want && durable.total() >= want {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if plain.total() < want || durable.total() < want {
		per := map[string]int{}
		plain.mu.Lock()
		for k := range plain.seen {
			per[strings.Fields(k)[0]]++
		}
		plain.mu.Unlock()
		n, _ := rx.srv.Receiver().Backlog(context.Background())
		t.Fatalf("%d of %d events arrived (JetStream consumer %d, backlog %d), by registration: %v", plain.total(), want,
			durable.total(), n, per)
	}
	// Let anything that would be handled twice show up before counting.
	waitFor(t, "the receiver's inbox is empty", func() bool {
		n, err := rx.srv.Receiver().Backlog(context.Background())
		return err == nil && n == 0
	})
	tok, err := os.ReadFile(rx.srv.AdminTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := tx.call(http.MethodGet, "http://"+rx.cfg.HTTPAddr+server.ReceiverStatusPath, strings.TrimSpace(string(tok)), nil)
	var doc struct {
		Registrations []receiver.Status `json:"registrations"`
		Backlog       int               `json:"backlog"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &doc) != nil || len(doc.Registrations) != 3 || doc.Backlog != 0 {
		t.Fatalf("GET %s: %d %s", server.ReceiverStatusPath, status, body)
	}
	if status, _, _ := tx.call(http.MethodGet, "http://"+rx.cfg.HTTPAddr+server.ReceiverStatusPath, "", nil); status != http.StatusUnauthorized {
		t.Fatalf("the receiver status without a token: %d", status)
	}
	plain.check(t, "the plain subscriber", regs, txns)
	durable.check(t, "the JetStream consumer", regs, txns)
	for _, s := range rx.statuses() {
		if len(s.Rejected) != 0 {
			t.Errorf("%s refused SETs: %v", s.Name, s.Rejected)
		}
	}
	// The restarted receiver's counters: it handled every SET it accepted, and those stored before the restart.
	_, _, metrics := tx.call(http.MethodGet, "http://"+rx.cfg.HTTPAddr+"/metrics", "", nil)
	for _, reg := range regs {
		accepted := metricValue(t, string(metrics), `ssfd_receiver_sets_total{outcome="accepted",registration="`+reg+`"}`)
		handled := metricValue(t, string(metrics), `ssfd_receiver_handle_wait_seconds_count{registration="`+reg+`"}`)
		if accepted == 0 || handled < accepted {
			t.Errorf("%s: %v accepted, %v handled after the restart", reg, accepted, handled)
		}
	}
}
