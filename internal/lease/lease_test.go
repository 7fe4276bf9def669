package lease_test

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssfd/ssfd/internal/lease"
	"github.com/ssfd/ssfd/internal/natsbus"
)

func openSet(t *testing.T, url, id string) (*lease.Set, *nats.Conn) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s, err := lease.Open(context.Background(), nc, "T", 3, id, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s, nc
}

// owners counts, for every partition, the sets that say they own it.
func owners(sets ...*lease.Set) (held []int) {
	held = make([]int, lease.Partitions)
	for p := range lease.Partitions {
		key := keyOf(p)
		for _, s := range sets {
			if s == nil {
				continue
			}
			if _, ok := s.Own(key); ok {
				held[p]++
			}
		}
	}
	return held
}

// keyOf finds a key that falls into partition p.
func keyOf(p int) string {
	for i := 0; ; i++ {
		if k := "stream-" + strconv.Itoa(i); lease.Partition(k) == p {
			return k
		}
	}
}

// waitFor polls cond every 100 ms for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 600 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within a minute", what)
}

func everyPartitionOnce(sets ...*lease.Set) bool {
	for _, n := range owners(sets...) {
		if n != 1 {
			return false
		}
	}
	return true
}

// TestLeasesAreSharedAndMoveWhenAReplicaDies runs three replicas on a real three-node JetStream cluster: the
// partitions end up held once each and shared fairly; a replica that stops gives its leases back at once; a
// replica that dies (its connection cut, nothing given back) loses its leases to the others once they expire.
func TestLeasesAreSharedAndMoveWhenAReplicaDies(t *testing.T) {
	c, err := natsbus.StartCluster(3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	sets := make([]*lease.Set, 3)
	conns := make([]*nats.Conn, 3)
	cancels := make([]context.CancelFunc, 3)
	for i := range sets {
		sets[i], conns[i] = openSet(t, c.URL(i), "replica-"+strconv.Itoa(i))
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i] = cancel
		t.Cleanup(cancel)
		go sets[i].Run(ctx)
	}
	// Throughout, handovers included, no partition is owned by two replicas at once.
	watch, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watch.Err() == nil {
			for p, n := range owners(sets...) {
				if n > 1 {
					t.Errorf("partition %d is owned by %d replicas at once", p, n)
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { stopWatch(); <-watched }()
	waitFor(t, "every partition held by exactly one of three replicas, fairly", func() bool {
		if !everyPartitionOnce(sets...) {
			return false
		}
		for _, s := range sets {
			if s.Held() < lease.Partitions/3-1 || s.Held() > lease.Partitions/3+1 {
				return false
			}
		}
		return true
	})

	// A work context ends when its partition goes: replica 0 stops, giving back its leases.
	key := keyOf(0)
	var ctx0 context.Context
	var owner int
	for i, s := range sets {
		if ctx, ok := s.Own(key); ok {
			ctx0, owner = ctx, i
		}
	}
	cancels[owner]()
	select {
	case <-ctx0.Done():
	case <-time.After(time.Minute):
		t.Fatal("the work context of a released partition did not end")
	}
	var rest []*lease.Set
	var restConns []*nats.Conn
	for i, s := range sets {
		if i != owner {
			rest, restConns = append(rest, s), append(restConns, conns[i])
		}
	}
	waitFor(t, "the two remaining replicas hold every partition once", func() bool { return everyPartitionOnce(rest...) })
	for p, n := range owners(sets[owner]) {
		if n != 0 {
			t.Fatalf("the stopped replica still owns partition %d", p)
		}
	}

	// Replica rest[0] dies: its connection is cut, so it gives nothing back and cannot renew. Its work stops
	// before its leases expire, and the last replica takes every partition once they have.
	held := rest[0].Held()
	if held == 0 {
		t.Fatal("the replica about to die holds nothing; the test would prove nothing")
	}
	restConns[0].Close()
	waitFor(t, "the cut-off replica stops its work", func() bool { return rest[0].Held() == 0 })
	waitFor(t, "the last replica holds every partition", func() bool { return everyPartitionOnce(rest[1]) })
}
