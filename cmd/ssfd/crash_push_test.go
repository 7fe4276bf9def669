package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
)

// TestCrashMidPushLosesNothing kills the server with SIGKILL while it pushes SETs to a receiver, restarts it,
// and checks that every accepted event reaches the receiver, in order per producer, and that only SETs in flight
// at the kill arrive twice: the one being pushed and those delivered whose acknowledgement was not committed yet
// (acknowledgements are group-committed while the next SET is pushed, so at most one commit's worth).
// maxInFlight bounds the SETs of one push stream delivered but not durably acknowledged at any moment: the
// receiver in this test takes 200 µs a SET and a group commit takes about a millisecond.
const maxInFlight = 16

func TestCrashMidPushLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	var mu sync.Mutex
	var arrivals []string // jti of every push, in arrival order
	rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, claims, err := keys.Decode(string(body))
		if err == nil {
			if set, err := schemas.ParseSET(claims); err == nil {
				mu.Lock()
				arrivals = append(arrivals, set.ID+" "+set.Txn)
				mu.Unlock()
			}
		}
		time.Sleep(200 * time.Microsecond) // a receiver that takes a moment, so the kill lands mid-push
		w.WriteHeader(http.StatusAccepted)
	}))
	defer rx.Close()

	dir := t.TempDir()
	first := startChild(t, dir, "127.0.0.1:0")
	addr := first.addr()
	tok := adminToken(t, dir)
	ctx := context.Background()
	client, err := receiver.Discover(ctx, first.url, receiver.WithToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateStream(ctx, receiver.StreamRequest{EventsRequested: []schemas.EventType{schemas.EventSessionRevoked},
		Delivery: &schemas.Delivery{Method: schemas.DeliveryPush, EndpointURL: rx.URL}}); err != nil {
		t.Fatal(err)
	}
	prod := startProducers(first.url, tok, 3)
	waitFor(t, "100 SETs are pushed", first, func() bool { mu.Lock(); defer mu.Unlock(); return len(arrivals) >= 100 })
	first.kill()
	accepted := prod.halt()
	startChild(t, dir, addr)

	want := len(accepted)
	seen := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for _, a := range arrivals {
			out[strings.Fields(a)[1]]++
		}
		return out
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := seen()
		missing := 0
		for txn := range accepted {
			if got[txn] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted events never reached the receiver", missing, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	dups, last := 0, map[string]string{}
	firstSeen := map[string]bool{}
	for _, a := range arrivals {
		txn := strings.Fields(a)[1]
		if firstSeen[txn] {
			dups++
			continue
		}
		firstSeen[txn] = true
		producer, seq, _ := strings.Cut(txn, "-")
		if seq <= last[producer] {
			t.Fatalf("order broken for %s: %s after %s", producer, seq, last[producer])
		}
		last[producer] = seq
	}
	if dups > maxInFlight {
		t.Fatalf("%d SETs arrived twice; only the few in flight at the kill may", dups)
	}
	t.Logf("%d events accepted, %d pushes, %d duplicate", want, len(arrivals), dups)
}
