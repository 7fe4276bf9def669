package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/storage/jetstream"
	"github.com/ssfd/ssfd/storage/storetest"
	"github.com/ssfd/ssfd/streams"
)

// openStreams opens Streams on nc with opts and deletes its JetStream assets when t ends, so that the shared
// cluster does not carry every test's RAFT groups.
func openStreams(t *testing.T, nc *nats.Conn, opts jetstream.Options) *jetstream.Streams {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := jetstream.OpenStreams(ctx, nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStreamsAssets(t, opts.Prefix) })
	return s
}

func deleteStreamsAssets(t *testing.T, prefix string) {
	nc, err := nats.Connect(cluster.URLs())
	if err != nil {
		t.Error(err)
		return
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Error(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range []string{"KV_" + prefix + "_streams", "KV_" + prefix + "_deadletters", prefix + "_QUEUE"} {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, natsjs.ErrStreamNotFound) {
			t.Errorf("delete %s: %v", name, err)
		}
	}
}

func TestStreamsStoreConformance(t *testing.T) {
	storetest.TestStore(t, func(t *testing.T) streams.Store { return openStreams(t, connect(t), options()) })
}

func TestStreamsQueueConformance(t *testing.T) {
	storetest.TestQueue(t, func(t *testing.T) storetest.Backend { return openStreams(t, connect(t), options()) })
}

func testStream(id streams.ID) *streams.Stream {
	return &streams.Stream{Config: schemas.StreamConfiguration{StreamID: string(id), Audience: schemas.Audience{"https://rx"}},
		Owner: "client-a", Status: schemas.StatusEnabled, CreatedAt: time.Unix(1767225600, 0).UTC()}
}

func TestUpdatesRacingFromTwoReplicasAllLand(t *testing.T) {
	ctx := context.Background()
	opts := options()
	replicas := []*jetstream.Streams{openStreams(t, connectTo(t, 0), opts), openStreams(t, connectTo(t, 1), opts)}
	id := streams.NewID()
	if err := replicas[0].CreateStream(ctx, testStream(id)); err != nil {
		t.Fatal(err)
	}
	const each = 10
	var calls atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for r, s := range replicas {
		wg.Go(func() {
			for i := range each {
				_, err := s.UpdateStream(ctx, id, func(st *streams.Stream) error {
					calls.Add(1)
					st.Config.Audience = append(st.Config.Audience, fmt.Sprintf("https://replica-%d/%d", r, i))
					return nil
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d updates took %d changes: the others lost a compare-and-set and ran again", 2*each, calls.Load())
	got, err := replicas[1].GetStream(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Config.Audience) != 1+2*each {
		t.Fatalf("audience has %d entries, want %d: an update was lost: %v", len(got.Config.Audience), 1+2*each, got.Config.Audience)
	}
	for r := range replicas {
		for i := range each {
			if !slices.Contains(got.Config.Audience, fmt.Sprintf("https://replica-%d/%d", r, i)) {
				t.Fatalf("the update %d of replica %d was lost: %v", i, r, got.Config.Audience)
			}
		}
	}
}

func TestEnqueueSpansSeveralAtomicBatches(t *testing.T) {
	ctx := context.Background()
	s := openStreams(t, connect(t), options())
	ids := []streams.ID{streams.NewID(), streams.NewID()}
	for _, id := range ids {
		if err := s.CreateStream(ctx, testStream(id)); err != nil {
			t.Fatal(err)
		}
	}
	const n = 2500 // the server takes at most 1000 messages in one atomic batch
	items := make([]streams.Item, n)
	for i := range items {
		items[i] = streams.Item{Stream: ids[i%2], JTI: fmt.Sprintf("jti.%04d", i), SET: "a.b.c", Queued: time.Unix(int64(i), 0)}
	}
	if err := s.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	for k, id := range ids {
		if depth, err := s.Depth(ctx, id); err != nil || depth != n/2 {
			t.Fatalf("Depth = %d %v, want %d", depth, err, n/2)
		}
		got, more, err := s.Pending(ctx, id, 3)
		if err != nil || !more || len(got) != 3 || got[0].JTI != items[k].JTI || got[2].JTI != items[k+4].JTI {
			t.Fatalf("Pending = %+v %v %v", got, more, err)
		}
	}
}

// TestEnqueueAdaptsToTheServersBatchLimits runs against a single node that takes at most 100 messages in an
// atomic batch and 2 batches in flight per stream: Enqueue halves its batches and waits for room.
func TestEnqueueAdaptsToTheServersBatchLimits(t *testing.T) {
	ctx := context.Background()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoSigs: true, NoLog: true, JetStreamLimits: server.JSLimitOpts{MaxBatchSize: 100, MaxBatchInflightPerStream: 2}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("the server did not start")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s, err := jetstream.OpenStreams(ctx, nc, jetstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := streams.NewID()
	if err := s.CreateStream(ctx, testStream(id)); err != nil {
		t.Fatal(err)
	}
	const callers, each = 6, 250
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			items := make([]streams.Item, each)
			for i := range items {
				items[i] = streams.Item{Stream: id, JTI: fmt.Sprintf("c%d-%03d", c, i), SET: "a.b.c", Queued: time.Now()}
			}
			if err := s.Enqueue(ctx, items); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if depth, err := s.Depth(ctx, id); err != nil || depth != callers*each {
		t.Fatalf("Depth = %d %v, want %d", depth, err, callers*each)
	}
}

func TestEnqueueSurvivesTheLossOfTheQueueLeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := options()
	nc := connect(t)
	s := openStreams(t, nc, opts)
	id := streams.NewID()
	if err := s.CreateStream(ctx, testStream(id)); err != nil {
		t.Fatal(err)
	}
	item := func(i int) streams.Item {
		return streams.Item{Stream: id, JTI: fmt.Sprintf("jti-%02d", i), SET: "a.b.c", Queued: time.Unix(int64(i), 0)}
	}
	if err := s.Enqueue(ctx, []streams.Item{item(0), item(1)}); err != nil {
		t.Fatal(err)
	}
	node := queueLeader(ctx, t, nc, opts.Prefix+"_QUEUE")
	cluster.StopNode(node)
	t.Cleanup(func() {
		if err := cluster.RestartNode(node); err != nil {
			t.Fatal(err)
		}
	})
	start := time.Now()
	for i := 2; i < 6; i += 2 {
		// Enqueue retries while the stream elects a new leader; the loop only bounds a slow election.
		for {
			err := s.Enqueue(ctx, []streams.Item{item(i), item(i + 1)})
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("no Enqueue succeeded within 2m of the node loss: %v", err)
			}
			t.Logf("Enqueue after the node loss: %v", err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("Enqueue succeeded %v after the loss of the queue leader", time.Since(start).Round(time.Millisecond))
	got, more, err := s.Pending(ctx, id, 10)
	if err != nil || more || len(got) != 6 {
		t.Fatalf("Pending = %d %v %v, want the 6 SETs", len(got), more, err)
	}
	for i, it := range got {
		if it.JTI != item(i).JTI {
			t.Fatalf("Pending[%d] = %s, want %s", i, it.JTI, item(i).JTI)
		}
	}
}

// queueLeader returns the index of the node that leads the stream name (node i is named n<i+1>).
func queueLeader(ctx context.Context, t *testing.T, nc *nats.Conn, name string) int {
	t.Helper()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info := st.CachedInfo()
	if info.Cluster == nil || len(info.Cluster.Leader) < 2 {
		t.Fatalf("stream %s has no leader: %+v", name, info.Cluster)
	}
	var n int
	if _, err := fmt.Sscanf(info.Cluster.Leader, "n%d", &n); err != nil {
		t.Fatal(err)
	}
	return n - 1
}
