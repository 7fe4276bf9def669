package jetstream_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/storage/jetstream"
)

// TestRingsAreSharedAndRotatedByCompareAndSet: two replicas on different NATS nodes sign with the same key, a
// rotation on one reaches the other, and two rotations at once both land.
func TestRingsAreSharedAndRotatedByCompareAndSet(t *testing.T) {
	ctx := context.Background()
	opts := options()
	open := func(node int) *jetstream.Rings {
		r, err := jetstream.OpenRings(ctx, connectTo(t, node), opts, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		return r
	}
	a, b := open(0), open(1)
	ringA, err := a.Open(ctx, "set-ES256", keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	ringB, err := b.Open(ctx, "set-ES256", keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	if ringA.Active().ID() != ringB.Active().ID() {
		t.Fatal("two replicas opened the same ring with different active keys")
	}
	if _, err := b.Open(ctx, "set-ES256", keys.EdDSA); err == nil {
		t.Fatal("a ring opened as another algorithm")
	}
	same := func(what string) {
		t.Helper()
		for range 500 {
			if ringA.Active().ID() == ringB.Active().ID() {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s: replicas sign with different keys", what)
	}
	first := ringA.Active().ID()
	if err := a.Rotate(ctx, "set-ES256", ringA); err != nil {
		t.Fatal(err)
	}
	same("after one rotation")
	if ringB.Active().ID() == first {
		t.Fatal("the rotation did not change the active key")
	}
	if _, err := ringB.Key(ctx, first); err != nil {
		t.Fatalf("the retired key is no longer published: %v", err)
	}
	second := ringB.Active().ID()
	var wg sync.WaitGroup
	for _, r := range []struct {
		rings *jetstream.Rings
		ring  *keys.Ring
	}{{a, ringA}, {b, ringB}} {
		wg.Go(func() {
			if err := r.rings.Rotate(ctx, "set-ES256", r.ring); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	same("after two concurrent rotations")
	// Two rotations from `second`: the key that was next after the first concurrent rotation is active, so the
	// one that signed before them (second) is retired and still published, and the active one is new.
	if ringA.Active().ID() == second {
		t.Fatal("two concurrent rotations left the active key unchanged")
	}
	if _, err := ringA.Key(ctx, second); err != nil {
		t.Fatalf("a key retired by concurrent rotations is no longer published: %v", err)
	}
	if n := len(ringA.JWKS().Keys()); n != 5 {
		t.Fatalf("after three rotations the ring publishes %d keys, want 5 (next, active, three retired)", n)
	}
}
