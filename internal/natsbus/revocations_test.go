package natsbus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/natsbus"
)

func openBus(t *testing.T) *natsbus.RevocationBus {
	t.Helper()
	emb, err := natsbus.StartEmbedded("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := natsbus.Connect(emb.ClientURL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	bus, err := natsbus.OpenRevocations(context.Background(), nc, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return bus
}

// follower records what Follow hands over and when it reported caught up.
type follower struct {
	mu      sync.Mutex
	applied []string
	atReady int // how many ops were applied when caughtUp ran; -1 before
}

func follow(t *testing.T, bus *natsbus.RevocationBus) (*follower, context.CancelFunc) {
	f := &follower{atReady: -1}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_ = bus.Follow(ctx, func(op []byte) {
			f.mu.Lock()
			f.applied = append(f.applied, string(op))
			f.mu.Unlock()
		}, func() {
			f.mu.Lock()
			f.atReady = len(f.applied)
			f.mu.Unlock()
		})
	}()
	return f, cancel
}

func (f *follower) state() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.applied...), f.atReady
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// TestFollowCatchesUpAfterEverythingStored: every op stored before Follow started (in both streams, the same op
// published twice stored once) is applied before caughtUp, in order; later ops follow.
func TestFollowCatchesUpAfterEverythingStored(t *testing.T) {
	bus := openBus(t)
	ctx := context.Background()
	for i := range 3 {
		id := fmt.Sprintf("op-%d", i)
		for range 2 { // a republished op is stored once (Nats-Msg-Id)
			if err := bus.Publish(ctx, "acme", id, []byte(id), false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := bus.Publish(ctx, "", "key-1", []byte("key-1"), true); err != nil {
		t.Fatal(err)
	}
	f, cancel := follow(t, bus)
	defer cancel()
	waitUntil(t, "caught up", func() bool { _, ready := f.state(); return ready >= 0 })
	applied, ready := f.state()
	if ready != 4 || len(applied) != 4 {
		t.Fatalf("caught up after %d ops, applied %v; want all 4 stored before", ready, applied)
	}
	if err := bus.Publish(ctx, "other tenant!", "op-late", []byte("op-late"), false); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the later op arrives", func() bool { a, _ := f.state(); return len(a) == 5 })
}

// TestFollowOfEmptyStreamsIsCaughtUpAtOnce: nothing stored, nothing to wait for.
func TestFollowOfEmptyStreamsIsCaughtUpAtOnce(t *testing.T) {
	f, cancel := follow(t, openBus(t))
	defer cancel()
	waitUntil(t, "caught up", func() bool { _, ready := f.state(); return ready == 0 })
}

// TestWatchAcksCountsServersThatAckedEveryOp: a resource server counts once it acknowledged every op asked about.
func TestWatchAcksCountsServersThatAckedEveryOp(t *testing.T) {
	bus := openBus(t)
	count, changed, stop, err := bus.WatchAcks()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	bus.Ack("rs-1", "disable", "watermark")
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no signal for an acknowledgement")
	}
	bus.Ack("rs-2", "disable")
	waitUntil(t, "both acknowledged the disable", func() bool { return count("disable") == 2 })
	if n := count("disable", "watermark"); n != 1 {
		t.Fatalf("count(disable, watermark) = %d, want 1: rs-2 has not acknowledged the watermark", n)
	}
	bus.Ack("rs-2", "watermark")
	waitUntil(t, "rs-2 counted", func() bool { return count("disable", "watermark") == 2 })
	if n := count(); n != 0 {
		t.Fatalf("count() = %d", n)
	}
}

// TestRevocationSubjectKeepsTenantsOutOfWildcards: plain tenants name their subject, others are hashed.
func TestRevocationSubjectKeepsTenantsOutOfWildcards(t *testing.T) {
	for tenant, want := range map[string]string{"acme": "ssf.revocation.acme", "": "ssf.revocation._"} {
		if got := natsbus.RevocationSubject(tenant); got != want {
			t.Fatalf("RevocationSubject(%q) = %q, want %q", tenant, got, want)
		}
	}
	for _, odd := range []string{"a.b", "a*", ">", "acme corp"} {
		if got := natsbus.RevocationSubject(odd); len(got) != len("ssf.revocation.h")+16 {
			t.Fatalf("RevocationSubject(%q) = %q, not hashed", odd, got)
		}
	}
}
