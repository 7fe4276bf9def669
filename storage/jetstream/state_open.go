package jetstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/storage/bolt"
)

const (
	// stateDedupWindow is how long the log remembers a command's Nats-Msg-Id: a publish retried within it is
	// stored once.
	stateDedupWindow = 2 * time.Minute
	// stateHeartbeat is how often the server tells an idle follower that it is still there.
	stateHeartbeat = time.Second
)

// stateOpenAttempts bounds the opens of a State that found a gap, or whose snapshot download failed: a snapshot
// taken while it opened replaced the one it loaded, and purged the commands after it.
const stateOpenAttempts = 3

// OpenState creates (or finds) the log stream of opts, rebuilds the view at viewPath from the log's latest
// snapshot (if any) and the commands after it, and returns once the view caught up with the log's last sequence
// at the time of the call.
//
// viewPath is a cache owned by the State: any file there is deleted first, and the view is rebuilt at every
// open, so startup time grows with the snapshot's size and the commands logged since. A log whose head was
// purged and that has no snapshot of its own covering the purge cannot be rebuilt: OpenState fails. Two States
// must not share a viewPath.
func OpenState(ctx context.Context, nc *nats.Conn, opts Options, viewPath string) (*State, error) {
	opts, js, err := open(nc, opts)
	if err != nil {
		return nil, err
	}
	cfg := stateStreamConfig(opts)
	stream, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("jetstream: create stream %s: %w", cfg.Name, err)
	}
	for attempt := 1; ; attempt++ {
		s, err := openStateView(ctx, js, opts, stream, viewPath)
		retry := errors.Is(err, errStateGap) || errors.Is(err, errStateDownload)
		if err == nil || !retry || attempt == stateOpenAttempts {
			return s, err
		}
		if stream, err = js.Stream(ctx, cfg.Name); err != nil {
			return nil, fmt.Errorf("jetstream: find stream %s: %w", cfg.Name, err)
		}
	}
}

// openStateView builds the view at viewPath from the latest snapshot of stream, or from its first command, and
// follows the log from there until it caught up.
func openStateView(ctx context.Context, js jetstream.JetStream, opts Options, stream jetstream.Stream, viewPath string) (*State, error) {
	info := stream.CachedInfo()
	for _, p := range []string{viewPath, viewPath + ".snapshot"} { // a copy a crash left behind goes too
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("jetstream: remove the old view: %w", err)
		}
	}
	from, err := loadStateSnapshot(ctx, js, opts, info, viewPath)
	if err != nil {
		return nil, err
	}
	if st := info.State; from == 0 && st.LastSeq > 0 && st.FirstSeq != 1 {
		return nil, fmt.Errorf("jetstream: stream %s starts at %d, not 1, and no snapshot of it covers the purged head: "+
			"the state cannot be rebuilt", info.Config.Name, st.FirstSeq)
	}
	// A cache rebuilt from the log: no fsync and no batching delay. bolt's 1 GiB initial map keeps a snapshot's
	// long read from holding up the commits (and the reads behind them) that grow the file.
	view, err := bolt.Open(viewPath, bolt.WithoutSync(), bolt.WithBatchDelay(0), bolt.WithCommitDelay(0))
	if err != nil {
		return nil, fmt.Errorf("jetstream: open the view: %w", err)
	}
	s, err := followState(ctx, js, stream, view, from)
	if err != nil {
		_ = view.Close()
		return nil, err
	}
	s.viewPath, s.snapshots, s.replicas, s.keep = viewPath, stateSnapshotBucket(opts), opts.Replicas, opts.snapshotKeep()
	if err := s.sync(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("jetstream: catch up with %s: %w", s.stream, err)
	}
	return s, nil
}

// followState starts applying the log of stream to view, which holds commands 1..applied, from command
// applied+1.
func followState(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, view *bolt.DB, applied uint64) (*State, error) {
	info := stream.CachedInfo()
	consCfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if applied > 0 {
		consCfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: applied + 1}
	}
	cons, err := js.OrderedConsumer(ctx, info.Config.Name, consCfg)
	if err != nil {
		return nil, fmt.Errorf("jetstream: follow %s: %w", info.Config.Name, err)
	}
	// A lost pull request (seen with a consumer created right after its stream) shows as missing heartbeats and
	// resets the consumer: heartbeats every second bound that stall to about two seconds, not ten.
	iter, err := cons.Messages(jetstream.PullHeartbeat(stateHeartbeat))
	if err != nil {
		return nil, fmt.Errorf("jetstream: follow %s: %w", info.Config.Name, err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &State{js: js, stream: info.Config.Name, subject: strings.TrimSuffix(info.Config.Subjects[0], ">"),
		created: info.Created, view: view, iter: iter, ctx: sctx, cancel: cancel, applied: applied, advanced: make(chan struct{}),
		pending: map[string]chan stateResult{}, stopped: make(chan struct{}), followed: make(chan struct{})}
	go s.follow()
	return s, nil
}

// follow applies the log to the view in order until the iterator stops or a command fails.
func (s *State) follow() {
	defer close(s.followed)
	for {
		msg, err := s.iter.Next()
		if err == nil {
			err = s.applyMsg(msg)
		} else {
			err = fmt.Errorf("jetstream: follow %s: %w", s.stream, err)
		}
		if err != nil {
			s.stop(err, false)
			return
		}
	}
}

// stateStreamConfig is the log: file storage on opts.Replicas servers, every message kept until a snapshot covers
// it (then the head is purged: DenyPurge stays false), none deletable one by one. The
// prefix stays as it is in the subjects, as in streamsLayout: prefixes that differ in case are different logs.
func stateStreamConfig(opts Options) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        opts.Prefix + "_STATE",
		Description: "ssfd issuer and receiver state: the command log every replica applies in order",
		Subjects:    []string{opts.Prefix + ".state.>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		Duplicates:  stateDedupWindow,
		DenyDelete:  true,
	}
}
