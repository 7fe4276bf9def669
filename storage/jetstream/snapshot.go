package jetstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A snapshot is one object of the Object Store bucket <Prefix>_STATE_SNAPSHOTS, named stateSnapshotObject: a
// copy of a view (a storage/bolt file) holding exactly the effects of commands 1..S of the log. Its metadata
// gives S and the creation time of the log it belongs to, so that a snapshot of a log deleted and created again
// under the same name is never loaded.
const (
	stateSnapshotObject     = "latest"
	stateSnapshotSeqKey     = "ssfd-applied-seq"
	stateSnapshotCreatedKey = "ssfd-log-created"
)

// stateDownloadTimeout bounds the download of a snapshot. Without a deadline the object store client would allow
// it five seconds; and a download whose object is replaced meanwhile (its chunks purged) waits for the deadline.
const stateDownloadTimeout = 10 * time.Minute

// errStateDownload is a snapshot whose download failed: it may have been replaced meanwhile, so OpenState tries
// again.
var errStateDownload = errors.New("jetstream: the state snapshot could not be downloaded")

// stateSnapshotBucket names the snapshot bucket of opts.
func stateSnapshotBucket(opts Options) string { return opts.Prefix + "_STATE_SNAPSHOTS" }

// Snapshot stores a copy of the view as of the sequence S it applied last, then purges the log's commands below
// S minus Options.SnapshotKeep, and returns S. A State opened later loads the snapshot and applies only the
// commands after S.
//
// The copy is consistent: no command is applied while its read transaction begins and S is read. It is written
// to a file next to the view first and uploaded from there, so the read transaction (which stalls a commit that
// must grow the view's file) lasts as long as a local copy, not an upload. A snapshot never replaces a newer one
// of the same log, and the log is never purged past the stored snapshot: only one replica should snapshot at a
// time (RunSnapshots under a lease), because the check and the replacement of "latest" are not atomic.
func (s *State) Snapshot(ctx context.Context) (uint64, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)() // Close waits for nothing: it ends the upload
	store, err := s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: s.snapshots,
		Description: "ssfd state snapshots: a copy of the view of " + s.stream + " as of one of its commands",
		Storage:     jetstream.FileStorage, Replicas: s.replicas})
	if err != nil {
		return 0, fmt.Errorf("jetstream: create bucket %s: %w", s.snapshots, err)
	}
	path := s.viewPath + ".snapshot"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("jetstream: snapshot %s: %w", s.stream, err)
	}
	defer os.Remove(path)
	defer f.Close()
	seq, err := s.copyView(f)
	if err != nil || seq == 0 {
		return 0, err
	}
	prev, err := stateSnapshotSeq(ctx, store, s.created)
	if err != nil {
		return 0, err
	}
	if prev < seq {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return 0, fmt.Errorf("jetstream: snapshot %s: %w", s.stream, err)
		}
		meta := jetstream.ObjectMeta{Name: stateSnapshotObject, Metadata: map[string]string{
			stateSnapshotSeqKey:     strconv.FormatUint(seq, 10),
			stateSnapshotCreatedKey: s.created.UTC().Format(time.RFC3339Nano)}}
		if _, err := store.Put(ctx, meta, f); err != nil {
			return 0, fmt.Errorf("jetstream: store the snapshot of %s #%d: %w", s.stream, seq, err)
		}
	} else {
		seq = prev // another replica stored a newer one
	}
	// Purge below what is stored now, not what this call meant to store: a holder that lost its lease mid-Put
	// may have replaced a newer snapshot with this older one.
	stored, err := stateSnapshotSeq(ctx, store, s.created)
	if err != nil {
		return 0, err
	}
	return seq, s.purgeBelow(ctx, min(seq, stored))
}

// copyView writes a copy of the view to w and returns the sequence of the last command it holds.
func (s *State) copyView(w io.Writer) (uint64, error) {
	s.applyMu.Lock()
	s.mu.Lock()
	seq, stopErr := s.applied, s.stopErr
	s.mu.Unlock()
	if stopErr != nil {
		s.applyMu.Unlock()
		return 0, stopErr // a view that stopped following may differ from the others: never copy it
	}
	c, err := s.view.BeginCopy()
	s.applyMu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("jetstream: snapshot %s: %w", s.stream, err)
	}
	defer c.Close()
	if _, err := c.WriteTo(w); err != nil {
		return 0, fmt.Errorf("jetstream: snapshot %s: %w", s.stream, err)
	}
	return seq, c.Close()
}

// purgeBelow purges the log's commands below seq minus the keep margin, if the log is still the one of this
// State: a purge of a log created again would lose commands that no snapshot holds.
func (s *State) purgeBelow(ctx context.Context, seq uint64) error {
	if seq <= s.keep {
		return nil
	}
	stream, err := s.js.Stream(ctx, s.stream)
	if err != nil {
		return fmt.Errorf("jetstream: find %s: %w", s.stream, err)
	}
	info := stream.CachedInfo()
	if !info.Created.Equal(s.created) {
		return fmt.Errorf("jetstream: stream %s was recreated at %v: not purged", s.stream, info.Created)
	}
	first := seq - s.keep + 1
	// Never past a follower: the slowest replica's ordered consumer has been handed commands up to its
	// delivered sequence, and a purge beyond it would cut that replica off from the log.
	if slowest, ok := slowestFollower(ctx, stream); ok && slowest+1 < first {
		first = slowest + 1
	}
	if info.State.FirstSeq >= first {
		return nil
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSequence(first)); err != nil {
		return fmt.Errorf("jetstream: purge %s below #%d: %w", s.stream, first, err)
	}
	return nil
}

// slowestFollower returns the lowest stream sequence any consumer of the log was handed, and false when no
// consumer could be listed (then only the keep margin protects followers).
func slowestFollower(ctx context.Context, stream jetstream.Stream) (uint64, bool) {
	lister := stream.ListConsumers(ctx)
	lowest, found := uint64(0), false
	for ci := range lister.Info() {
		if d := ci.Delivered.Stream; !found || d < lowest {
			lowest, found = d, true
		}
	}
	if lister.Err() != nil {
		return 0, false
	}
	return lowest, found
}

// stateSnapshotSeq returns the sequence of the stored snapshot of the log created at created, 0 if none.
func stateSnapshotSeq(ctx context.Context, store jetstream.ObjectStore, created time.Time) (uint64, error) {
	var info *jetstream.ObjectInfo
	err := streamsRetry(ctx, func(ctx context.Context) (err error) { // a new bucket may not have a leader yet
		info, err = store.GetInfo(ctx, stateSnapshotObject)
		return err
	})
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("jetstream: find the state snapshot: %w", err)
	}
	seq, _ := stateSnapshotOf(info, created)
	return seq, nil
}

// stateSnapshotOf returns the sequence a snapshot's metadata gives, and whether it belongs to the log created at
// created.
func stateSnapshotOf(info *jetstream.ObjectInfo, created time.Time) (uint64, bool) {
	at, err := time.Parse(time.RFC3339Nano, info.Metadata[stateSnapshotCreatedKey])
	if err != nil || !at.Equal(created) {
		return 0, false
	}
	seq, err := strconv.ParseUint(info.Metadata[stateSnapshotSeqKey], 10, 64)
	return seq, err == nil && seq > 0
}

// loadStateSnapshot writes the latest snapshot of the log described by info to viewPath and returns its
// sequence, or returns 0 (and writes nothing) when the log has none. A snapshot older than the log's head is a
// gap (errStateGap), and a failed download may be a snapshot replaced while it was read (errStateDownload):
// OpenState tries again, to load the newer snapshot.
func loadStateSnapshot(ctx context.Context, js jetstream.JetStream, opts Options, info *jetstream.StreamInfo, viewPath string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, stateDownloadTimeout)
	defer cancel()
	store, err := js.ObjectStore(ctx, stateSnapshotBucket(opts))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("jetstream: find bucket %s: %w", stateSnapshotBucket(opts), err)
	}
	res, err := store.Get(ctx, stateSnapshotObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("jetstream: load the snapshot of %s: %w", info.Config.Name, err)
	}
	defer res.Close()
	meta, err := res.Info() // the object being read, even if another replaces it meanwhile
	if err != nil {
		return 0, fmt.Errorf("jetstream: load the snapshot of %s: %w", info.Config.Name, err)
	}
	seq, ok := stateSnapshotOf(meta, info.Created)
	switch {
	case !ok:
		return 0, nil // a snapshot of an earlier log of this name
	case seq+1 < info.State.FirstSeq:
		return 0, fmt.Errorf("jetstream: the snapshot of %s holds commands up to #%d but the log starts at #%d: %w",
			info.Config.Name, seq, info.State.FirstSeq, errStateGap)
	}
	f, err := os.OpenFile(viewPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("jetstream: load the snapshot of %s: %w", info.Config.Name, err)
	}
	_, err = io.Copy(f, res) // the object store checks the digest at the end
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %s #%d: %w", errStateDownload, info.Config.Name, seq, err)
	}
	return seq, nil
}

// RunSnapshots snapshots the state (Snapshot) whenever at least minCommands were applied since the log's latest
// snapshot, checking at once and then every interval, until ctx ends. It logs what it did and what failed; a
// failed snapshot is tried again at the next check. Only one replica should run it at a time.
func (s *State) RunSnapshots(ctx context.Context, every time.Duration, minCommands uint64, log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		start := time.Now()
		seq, err := s.snapshotIfDue(ctx, minCommands)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("state snapshot failed", "stream", s.stream, "err", err)
		case seq > 0:
			log.Info("state snapshot stored", "stream", s.stream, "seq", seq, "took", time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// snapshotIfDue snapshots when at least minCommands were applied since the latest snapshot, and returns the
// snapshot's sequence, 0 when none was due.
func (s *State) snapshotIfDue(ctx context.Context, minCommands uint64) (uint64, error) {
	if err := s.Err(); err != nil {
		return 0, err
	}
	var latest uint64
	store, err := s.js.ObjectStore(ctx, s.snapshots)
	switch {
	case err == nil:
		if latest, err = stateSnapshotSeq(ctx, store, s.created); err != nil {
			return 0, err
		}
	case !errors.Is(err, jetstream.ErrBucketNotFound):
		return 0, fmt.Errorf("jetstream: find bucket %s: %w", s.snapshots, err)
	}
	s.mu.Lock()
	applied := s.applied
	s.mu.Unlock()
	if applied < latest+max(minCommands, 1) {
		return 0, nil
	}
	return s.Snapshot(ctx)
}
