package jetstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/storage/bolt"
)

// stateFetchTimeout bounds one request for the log's last sequence.
const stateFetchTimeout = 5 * time.Second

// State is the issuer's and the receiver's state shared by every replica of a clustered ssfd: it implements
// issuer.Store and receiver.Inbox as a replicated state machine on the JetStream stream <Prefix>_STATE, whose
// RAFT group orders the commands; ssfd adds no consensus of its own.
//
// Every write is a command (JSON) published on <Prefix>.state.<kind> with a unique Nats-Msg-Id, so a retried
// publish is stored once. Every State follows the log from its first message with an ordered consumer and
// applies each command, one at a time in log order, to a local view: a storage/bolt file at viewPath. Every
// command's effect depends on the command and the view only (times are in the command, never read from the
// clock), so every replica's view holds the same state after the same sequence. A writer waits until its own
// State applied its command and returns what that application returned: the error (issuer.ErrExists,
// issuer.ErrRevoked, issuer.ErrReplay...) or the value (Revoke's op with its Seq and Nodes, Accept's bool).
//
// Reads are linearizable: a read first asks the stream leader for the log's last sequence (one STREAM.INFO
// request, shared by the reads that arrive while it is not yet sent) and waits until the view applied it, so
// a read sees every write that returned before it started, through any replica.
//
// A command refused alike by every replica (an error that is a sentinel of the stores, a malformed command)
// changes nothing and its error goes to its writer. A command this view fails to apply for a reason of its own
// (a disk error), or of a kind this ssfd does not know, stops the State: the view can no longer be trusted to
// equal the others, and every call returns that error until the State is reopened. So does a log that was
// deleted and created again.
//
// A snapshot (snapshot.go) stores a copy of the view as of a sequence S next to the log and purges the log below
// S minus a margin, so that the log does not grow forever: a State opens on the latest snapshot of its log and
// applies only the commands after it. A State that falls more than the margin behind finds a gap in the log and
// stops; reopened, it starts from the snapshot.
//
// Every replica applies every command, one at a time with one bbolt commit each, so the cluster writes at most
// as fast as one view commits (about 2,000 commands/s on the development machine).
type State struct {
	js      jetstream.JetStream
	stream  string    // <Prefix>_STATE
	subject string    // <Prefix>.state. ; the command kind follows
	created time.Time // when the stream was created: a stream of the same name created later is another log
	view    *bolt.DB
	iter    jetstream.MessagesContext
	last    stateLastSeq

	viewPath  string // the view's file; its snapshot copy is written next to it
	snapshots string // the Object Store bucket of the log's snapshots: <Prefix>_STATE_SNAPSHOTS
	replicas  int    // the replica count of that bucket
	keep      uint64 // the commands a snapshot leaves in the log below its sequence

	// applyMu is held while a command is applied and applied moves, so that a snapshot that holds it sees a view
	// of exactly commands 1..applied.
	applyMu sync.Mutex
	snapMu  sync.Mutex // one Snapshot at a time: they share the copy's file

	ctx    context.Context // ends at Close; bounds the fetches of the last sequence
	cancel context.CancelFunc

	mu       sync.Mutex
	applied  uint64                      // the sequence of the last command applied to the view
	advanced chan struct{}               // closed and replaced whenever applied moves
	pending  map[string]chan stateResult // Nats-Msg-Id → the writer waiting for its command
	stopErr  error                       // why the State stopped: issuer.ErrClosed after Close, or a failure
	stopped  chan struct{}               // closed when the State stops
	followed chan struct{}               // closed when the follower returned

	closeOnce sync.Once
	closeErr  error
}

// stateCommand is one write, as logged. Its kind is the last token of the subject; each kind uses the fields
// it needs.
type stateCommand struct {
	Client  *issuer.Client  `json:"client,omitempty"`
	Old     *issuer.Client  `json:"old,omitempty"` // the client UpdateClient changed: a compare-and-swap
	Node    *issuer.Node    `json:"node,omitempty"`
	Op      *issuer.Op      `json:"op,omitempty"`
	Seq     uint64          `json:"seq,omitempty"`
	Refresh *issuer.Refresh `json:"refresh,omitempty"`
	Hash    string          `json:"hash,omitempty"`
	Key     string          `json:"key,omitempty"`
	Until   time.Time       `json:"until,omitzero"`
	Now     time.Time       `json:"now,omitzero"` // the writer's clock, for commands that expire records
	Entry   *receiver.Entry `json:"entry,omitempty"`
	Seqs    []uint64        `json:"seqs,omitempty"`
}

// stateKind names a command; it is the last token of the command's subject.
type stateKind string

// stateResult is what applying a command returned: the method's value and error.
type stateResult struct {
	value any
	err   error
}

// Close stops following the log and closes the view. Calls after Close return issuer.ErrClosed.
func (s *State) Close() error {
	s.closeOnce.Do(func() {
		s.stop(fmt.Errorf("jetstream: state %s: %w", s.stream, issuer.ErrClosed), true)
		s.cancel()
		s.iter.Stop()
		<-s.followed
		s.closeErr = s.view.Close()
	})
	return s.closeErr
}

// stop records why the State stopped; a failure does not replace an earlier one, Close replaces any.
func (s *State) stop(err error, closing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopErr == nil {
		close(s.stopped)
	}
	if s.stopErr == nil || closing {
		s.stopErr = err
	}
}

// Err returns why the State stopped following its log (a command its view could not apply, a gap in the log,
// a recreated log), nil while it follows. A stopped State answers every call with that error until reopened.
func (s *State) Err() error {
	if err := s.stopError(); err != nil && !errors.Is(err, issuer.ErrClosed) {
		return err
	}
	return nil
}

func (s *State) stopError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopErr
}

// apply decodes a logged command of kind and applies it to the view; a command that does not decode is
// malformed, an outcome like any other.
func (s *State) apply(kind stateKind, data []byte) stateResult {
	var cmd stateCommand
	if err := json.Unmarshal(data, &cmd); err != nil {
		return stateResult{err: fmt.Errorf("%w: %w", errStateMalformed, err)}
	}
	return s.applyCommand(kind, &cmd)
}

// applyMsg applies one command and hands its result to the writer waiting for it, if it is this State's.
func (s *State) applyMsg(msg jetstream.Msg) error {
	meta, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("jetstream: state log %s: %w", s.stream, err)
	}
	seq := meta.Sequence.Stream
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	applied := s.applied
	s.mu.Unlock()
	switch {
	case seq <= applied:
		return nil // delivered again after the consumer was reset
	case seq != applied+1:
		return fmt.Errorf("jetstream: state log %s goes from %d to %d: %w", s.stream, applied, seq, errStateGap)
	}
	kind := stateKind(strings.TrimPrefix(msg.Subject(), s.subject))
	res := s.apply(kind, msg.Data())
	if res.err != nil && !stateOutcome(res.err) {
		return fmt.Errorf("jetstream: apply %s #%d to the view: %w", kind, seq, res.err)
	}
	id := msg.Headers().Get(jetstream.MsgIDHeader)
	s.mu.Lock()
	s.applied = seq
	close(s.advanced)
	s.advanced = make(chan struct{})
	waiter := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if waiter != nil {
		waiter <- res // buffered; each id is applied once
	}
	return nil
}

// applyCommand applies one command to the view. It must be deterministic: it reads no clock and no other state,
// and the view is called with a context that never ends.
func (s *State) applyCommand(kind stateKind, cmd *stateCommand) stateResult {
	if res, ok := applyIssuerCommand(s.view, kind, cmd); ok {
		return res
	}
	if res, ok := applyInboxCommand(s.view, kind, cmd); ok {
		return res
	}
	return stateResult{err: fmt.Errorf("jetstream: unknown command %q: is a newer ssfd writing this log?", kind)}
}

// errStateGap is a log whose next command is missing: a snapshot purged it before this State applied it, or the
// log was purged by hand. A State reopened on the latest snapshot goes on.
var errStateGap = errors.New("jetstream: commands are missing from the log (purged by a snapshot?), the view cannot follow; reopen the state")

// errStateMalformed is a command that does not decode or lacks a field its kind needs: every replica refuses it
// alike, and it changes nothing.
var errStateMalformed = errors.New("jetstream: malformed command")

// stateOutcome reports whether err is a decision, the same on every replica (a sentinel of the stores, a lost
// compare-and-swap, a malformed command), rather than a failure of this view.
func stateOutcome(err error) bool {
	for _, target := range []error{issuer.ErrNotFound, issuer.ErrExists, issuer.ErrRevoked, issuer.ErrReplay,
		errStateClientChanged, errStateMalformed} {
		if errors.Is(err, target) {
			return true
		}
	}
	return bolt.IsRefusedKey(err) // an oversized key is refused alike everywhere; it must not stop the view
}

// submit logs cmd and waits until this State applied it, and returns what applying it returned. When ctx ends
// after the publish, or the publish fails for want of an answer, the command may still be applied.
func (s *State) submit(ctx context.Context, kind stateKind, cmd *stateCommand) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("jetstream: encode %s: %w", kind, err)
	}
	id := stateCommandID()
	waiter := make(chan stateResult, 1)
	s.mu.Lock()
	if err := s.stopErr; err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.pending[id] = waiter
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}()
	if err := s.publish(ctx, kind, id, data); err != nil {
		return nil, err
	}
	select {
	case res := <-waiter:
		return res.value, res.err
	case <-s.stopped:
		select {
		case res := <-waiter: // applied just before the State stopped
			return res.value, res.err
		default:
			return nil, s.stopError()
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("jetstream: %s was logged but not yet applied: %w", kind, ctx.Err())
	}
}

// publish logs one command, retrying (with the same message id, so that it is logged once) while the stream is
// electing a leader or does not answer, as the streams store's writes do.
func (s *State) publish(ctx context.Context, kind stateKind, id string, data []byte) error {
	err := streamsRetryDetached(ctx, func(actx context.Context) error {
		msg := &nats.Msg{Subject: s.subject + string(kind), Data: data}
		_, err := s.js.PublishMsg(actx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(s.stream))
		return err
	})
	if err != nil {
		return fmt.Errorf("jetstream: log %s on %s: %w", kind, s.stream, err)
	}
	return nil
}

// stateCommandID returns a new Nats-Msg-Id: 128 random bits.
func stateCommandID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// sync waits until the view applied every command logged before it was called.
func (s *State) sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.stopError(); err != nil {
		return err
	}
	last, err := s.last.get(ctx, s.fetchLastSeq)
	if err != nil {
		if stopErr := s.stopError(); stopErr != nil {
			return stopErr
		}
		return err
	}
	for {
		s.mu.Lock()
		applied, advanced, stopErr := s.applied, s.advanced, s.stopErr
		s.mu.Unlock()
		switch {
		case stopErr != nil:
			return stopErr
		case applied >= last:
			return nil
		}
		select {
		case <-advanced:
		case <-s.stopped:
		case <-ctx.Done():
			return fmt.Errorf("jetstream: wait for %s #%d (applied #%d): %w", s.stream, last, applied, ctx.Err())
		}
	}
}

// fetchLastSeq asks the stream leader for the log's last sequence.
func (s *State) fetchLastSeq() (uint64, error) {
	ctx, cancel := context.WithTimeout(s.ctx, stateFetchTimeout)
	defer cancel()
	stream, err := s.js.Stream(ctx, s.stream)
	if err != nil {
		return 0, fmt.Errorf("jetstream: last sequence of %s: %w", s.stream, err)
	}
	info := stream.CachedInfo()
	if !info.Created.Equal(s.created) {
		err := fmt.Errorf("jetstream: stream %s was recreated at %v: the view follows the old one", s.stream, info.Created)
		s.stop(err, false)
		return 0, err
	}
	return info.State.LastSeq, nil
}

// stateLastSeq shares fetches of the last sequence between concurrent readers without breaking linearizability:
// a reader joins only a fetch that has not been sent yet, so every fetch it sees started after it arrived. At
// most one fetch is in flight; readers arriving meanwhile wait for the next one, which they all share.
type stateLastSeq struct {
	mu      sync.Mutex
	running bool
	next    *stateFetch
}

// stateFetch is one request for the last sequence and the readers waiting for it.
type stateFetch struct {
	done chan struct{}
	seq  uint64
	err  error
}

func (l *stateLastSeq) get(ctx context.Context, fetch func() (uint64, error)) (uint64, error) {
	l.mu.Lock()
	f := l.next
	if f == nil {
		f = &stateFetch{done: make(chan struct{})}
		l.next = f
	}
	if !l.running {
		l.running, l.next = true, nil
		go l.run(f, fetch)
	}
	l.mu.Unlock()
	select {
	case <-f.done:
		return f.seq, f.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run sends f, then the fetch readers queued meanwhile, until none is queued.
func (l *stateLastSeq) run(f *stateFetch, fetch func() (uint64, error)) {
	for f != nil {
		f.seq, f.err = fetch()
		close(f.done)
		l.mu.Lock()
		f, l.next = l.next, nil
		l.running = f != nil
		l.mu.Unlock()
	}
}
