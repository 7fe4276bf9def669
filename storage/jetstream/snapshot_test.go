package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/storage/jetstream"
)

// stateSnapshots registers the deletion of the snapshot bucket of opts when t ends, after the States t opens
// later are closed.
func stateSnapshots(t testing.TB, nc *nats.Conn, opts jetstream.Options) {
	t.Helper()
	cleanUp(t, nc, "the snapshots of "+opts.Prefix, func(ctx context.Context, js natsjs.JetStream) error {
		return js.DeleteObjectStore(ctx, opts.Prefix+"_STATE_SNAPSHOTS")
	})
}

// stateLogInfo returns the state log's current stream info.
func stateLogInfo(t *testing.T, nc *nats.Conn, opts jetstream.Options) *natsjs.StreamInfo {
	t.Helper()
	js, err := natsjs.New(nc)
	mustState(t, err)
	stream, err := js.Stream(context.Background(), opts.Prefix+"_STATE")
	mustState(t, err)
	return stream.CachedInfo()
}

// stateWrite logs n one-time keys named prefix0..prefix(n-1), from 8 writers at once.
func stateWrite(t *testing.T, s *jetstream.State, prefix string, n int) {
	t.Helper()
	until := time.Unix(1767225600, 0).Add(100 * 365 * 24 * time.Hour)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if err := s.UseOnce(context.Background(), fmt.Sprint(prefix, i), until); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestStateSnapshotCompactsTheLog: a snapshot taken while commands are written purges the log's head but for the
// keep margin, and a State opened afterwards on a new view loads it and then the commands logged after it,
// ending with the same state as the State that wrote them all.
func TestStateSnapshotCompactsTheLog(t *testing.T) {
	ctx := context.Background()
	nc, opts := connect(t), options()
	opts.SnapshotKeep = 50
	stateLog(t, nc, opts)
	stateSnapshots(t, nc, opts)
	first := stateOpen(t, nc, opts)
	t0 := time.Unix(1767225600, 0)
	for _, id := range []string{"agent-a", "agent-b"} {
		mustState(t, first.CreateClient(ctx, &issuer.Client{ID: id, Tenant: "acme", CreatedAt: t0}))
	}
	for i := range 5 {
		if _, err := first.Accept(ctx, receiver.Entry{Issuer: "https://tx", JTI: fmt.Sprint("j", i), Received: t0}, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	mustState(t, first.Handled(ctx, []uint64{1}))
	stateWrite(t, first, "k", 300)

	// Commands keep coming while the snapshot is taken: it holds a prefix of the log, whatever its length.
	done := make(chan struct{})
	go func() { defer close(done); stateWrite(t, first, "during", 100) }()
	seq, err := first.Snapshot(ctx)
	mustState(t, err)
	<-done
	if seq < 308 {
		t.Fatalf("Snapshot = #%d, want at least #308 (every command written before it)", seq)
	}
	if got, want := stateLogInfo(t, nc, opts).State.FirstSeq, seq-opts.SnapshotKeep+1; got != want {
		t.Fatalf("the log starts at #%d after the snapshot at #%d, want #%d", got, seq, want)
	}
	mustState(t, first.CreateClient(ctx, &issuer.Client{ID: "agent-after", Tenant: "acme", CreatedAt: t0}))
	stateWrite(t, first, "after", 20)

	again := stateOpen(t, connectTo(t, 1), opts)
	if a, b := stateDump(t, first), stateDump(t, again); a != b {
		t.Fatalf("the State opened on the snapshot differs:\n%s\nwant\n%s", b, a)
	}
	for _, key := range []string{"k0", "k299", "during99", "after19"} {
		if err := again.UseOnce(ctx, key, t0.Add(time.Hour)); !errors.Is(err, issuer.ErrReplay) {
			t.Fatalf("UseOnce(%s) on the State opened on the snapshot: %v, want ErrReplay", key, err)
		}
	}
	if n, err := again.Len(ctx); err != nil || n != 4 {
		t.Fatalf("Len on the State opened on the snapshot = %d, %v, want 4", n, err)
	}
	if fresh, err := again.Accept(ctx, receiver.Entry{Issuer: "https://tx", JTI: "j0", Received: t0}, t0.Add(time.Hour)); err != nil || fresh {
		t.Fatalf("a replayed SET on the State opened on the snapshot = %v, %v, want false", fresh, err)
	}
	if c, err := first.Client(ctx, "agent-after"); err != nil || c.Tenant != "acme" {
		t.Fatalf("the State that wrote the log goes on: %+v, %v", c, err)
	}

	t.Run("a snapshot with nothing new applied keeps the stored one", func(t *testing.T) {
		latest, err := again.Snapshot(ctx)
		mustState(t, err)
		older, err := first.Snapshot(ctx)
		if err != nil || older != latest || latest <= seq {
			t.Fatalf("snapshots = #%d, then #%d, %v, want the same, after #%d", latest, older, err, seq)
		}
	})
}

// TestStateRefusesAPurgedLogWithoutSnapshot: a log whose head was purged by hand, with no snapshot, cannot be
// rebuilt: OpenState says so rather than serve a state missing commands.
func TestStateRefusesAPurgedLogWithoutSnapshot(t *testing.T) {
	ctx := context.Background()
	nc, opts := connect(t), options()
	stateLog(t, nc, opts)
	stateWrite(t, stateOpen(t, nc, opts), "k", 20)
	js, err := natsjs.New(nc)
	mustState(t, err)
	stream, err := js.Stream(ctx, opts.Prefix+"_STATE")
	mustState(t, err)
	mustState(t, stream.Purge(ctx, natsjs.WithPurgeSequence(10)))
	s, err := jetstream.OpenState(ctx, nc, opts, filepath.Join(t.TempDir(), "view.db"))
	if err == nil {
		_ = s.Close()
		t.Fatal("a State opened on a log missing its head")
	}
	if !strings.Contains(err.Error(), "cannot be rebuilt") {
		t.Fatalf("OpenState: %v, want it to say the state cannot be rebuilt", err)
	}
}

// TestStateIgnoresTheSnapshotOfAnEarlierLog: a snapshot of a log that was deleted and created again under the
// same name is not loaded, and a purged head of the new log is not covered by it.
func TestStateIgnoresTheSnapshotOfAnEarlierLog(t *testing.T) {
	ctx := context.Background()
	nc, opts := connect(t), options()
	opts.SnapshotKeep = 5
	stateLog(t, nc, opts)
	stateSnapshots(t, nc, opts)
	old, err := jetstream.OpenState(ctx, nc, opts, filepath.Join(t.TempDir(), "view.db"))
	mustState(t, err)
	mustState(t, old.CreateClient(ctx, &issuer.Client{ID: "agent-old"}))
	stateWrite(t, old, "k", 30)
	if _, err := old.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	mustState(t, old.Close())
	js, err := natsjs.New(nc)
	mustState(t, err)
	mustState(t, js.DeleteStream(ctx, opts.Prefix+"_STATE"))

	s := stateOpen(t, nc, opts)
	stateWrite(t, s, "new", 3)
	again := stateOpen(t, connectTo(t, 2), opts)
	if _, err := again.Client(ctx, "agent-old"); !errors.Is(err, issuer.ErrNotFound) {
		t.Fatalf("Client of the earlier log: %v, want ErrNotFound", err)
	}
	if err := again.UseOnce(ctx, "new2", time.Now().Add(time.Hour)); !errors.Is(err, issuer.ErrReplay) {
		t.Fatalf("a key of the new log: %v, want ErrReplay", err)
	}
	stream, err := js.Stream(ctx, opts.Prefix+"_STATE")
	mustState(t, err)
	mustState(t, stream.Purge(ctx, natsjs.WithPurgeSequence(2)))
	if s, err := jetstream.OpenState(ctx, nc, opts, filepath.Join(t.TempDir(), "view.db")); err == nil {
		_ = s.Close()
		t.Fatal("the earlier log's snapshot stood in for the new log's purged head")
	}
}

// TestStateRunSnapshotsCompactsOnceEnoughWasApplied: the snapshot job leaves a log shorter than its threshold
// alone and compacts it once enough commands were applied.
func TestStateRunSnapshotsCompactsOnceEnoughWasApplied(t *testing.T) {
	nc, opts := connect(t), options()
	opts.SnapshotKeep = 10
	stateLog(t, nc, opts)
	stateSnapshots(t, nc, opts)
	s := stateOpen(t, nc, opts)
	stateWrite(t, s, "k", 40)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.RunSnapshots(ctx, 20*time.Millisecond, 60, slog.New(slog.DiscardHandler)) })
	defer wg.Wait()
	defer cancel()
	time.Sleep(100 * time.Millisecond) // several checks: none may snapshot 40 commands
	if first := stateLogInfo(t, nc, opts).State.FirstSeq; first != 1 {
		t.Fatalf("the log starts at #%d after 40 commands, want #1: below the threshold", first)
	}
	stateWrite(t, s, "more", 40)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if first := stateLogInfo(t, nc, opts).State.FirstSeq; first > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the log was not compacted after 80 commands")
		}
	}
	again := stateOpen(t, connectTo(t, 1), opts)
	if err := again.UseOnce(context.Background(), "k0", time.Now().Add(time.Hour)); !errors.Is(err, issuer.ErrReplay) {
		t.Fatalf("a key from before the snapshot: %v, want ErrReplay", err)
	}
}
