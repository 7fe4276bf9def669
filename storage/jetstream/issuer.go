package jetstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ssfd/ssfd/issuer"
	"github.com/ssfd/ssfd/storage/bolt"
)

// The issuer's commands.
const (
	stateCreateClient  stateKind = "create_client"
	stateSwapClient    stateKind = "swap_client" // UpdateClient: Old is replaced by Client, unless it changed
	stateCreateNode    stateKind = "create_node"
	stateRevoke        stateKind = "revoke"
	stateSetEmitted    stateKind = "set_emitted"
	statePutRefresh    stateKind = "put_refresh"
	stateRotateRefresh stateKind = "rotate_refresh"
	stateUseOnce       stateKind = "use_once"
)

// stateSwapAttempts bounds the compare-and-swaps of one UpdateClient that lose to other updates of the client.
const stateSwapAttempts = 20

// errStateClientChanged is a swap_client whose Old no longer is the stored client: the update lost a race.
var errStateClientChanged = errors.New("jetstream: the client changed since it was read")

var _ issuer.Store = (*State)(nil)

// stateRead waits until the view caught up with the log, then reads it.
func stateRead[T any](ctx context.Context, s *State, read func() (T, error)) (T, error) {
	if err := s.sync(ctx); err != nil {
		var zero T
		return zero, err
	}
	return read()
}

// stateWrite logs cmd and returns the value and the error applying it returned.
func stateWrite[T any](ctx context.Context, s *State, kind stateKind, cmd *stateCommand) (T, error) {
	v, err := s.submit(ctx, kind, cmd)
	t, _ := v.(T)
	return t, err
}

// CreateClient registers c; issuer.ErrExists when its ID is taken.
func (s *State) CreateClient(ctx context.Context, c *issuer.Client) error {
	if c.ID == "" {
		return errors.New("jetstream: a client needs an ID")
	}
	_, err := s.submit(ctx, stateCreateClient, &stateCommand{Client: c})
	return err
}

// Client returns the client with id, or issuer.ErrNotFound.
func (s *State) Client(ctx context.Context, id string) (*issuer.Client, error) {
	return stateRead(ctx, s, func() (*issuer.Client, error) { return s.view.Client(ctx, id) })
}

// Clients lists every client, ordered by ID.
func (s *State) Clients(ctx context.Context) ([]*issuer.Client, error) {
	return stateRead(ctx, s, func() ([]*issuer.Client, error) { return s.view.Clients(ctx) })
}

// UpdateClient reads the client, applies change to a copy and logs a compare-and-swap: the log replaces the
// client read by the changed one, unless another update came first. Then it reads again and retries, up to 20
// times, so change may run more than once. An error from change is returned and nothing is logged.
func (s *State) UpdateClient(ctx context.Context, id string, change func(*issuer.Client) error) (*issuer.Client, error) {
	for attempt := 1; ; attempt++ {
		old, err := s.Client(ctx, id)
		if err != nil {
			return nil, err
		}
		next, err := stateCloneClient(old)
		if err != nil {
			return nil, err
		}
		if err := change(next); err != nil {
			return nil, err
		}
		if next.ID != id {
			return nil, fmt.Errorf("jetstream: an update may not change the client ID %s", id)
		}
		c, err := stateWrite[*issuer.Client](ctx, s, stateSwapClient, &stateCommand{Old: old, Client: next})
		if !errors.Is(err, errStateClientChanged) {
			return c, err
		}
		if attempt == stateSwapAttempts {
			return nil, fmt.Errorf("jetstream: update client %s: lost %d races in a row: %w", id, attempt, err)
		}
		select { // let the winner's next update go first
		case <-time.After(time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond)))):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// stateCloneClient returns a deep copy of c, so that change cannot alter the client it is compared with.
func stateCloneClient(c *issuer.Client) (*issuer.Client, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("jetstream: copy client %s: %w", c.ID, err)
	}
	var out issuer.Client
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("jetstream: copy client %s: %w", c.ID, err)
	}
	return &out, nil
}

// CreateNode stores n; its parent is checked when the command is applied, in log order, so a node is never
// created below a node whose revocation was logged first.
func (s *State) CreateNode(ctx context.Context, n *issuer.Node) error {
	if n.ID == "" {
		return errors.New("jetstream: a node needs an ID")
	}
	_, err := s.submit(ctx, stateCreateNode, &stateCommand{Node: n})
	return err
}

// Node returns the node with sid, or issuer.ErrNotFound.
func (s *State) Node(ctx context.Context, sid string) (*issuer.Node, error) {
	return stateRead(ctx, s, func() (*issuer.Node, error) { return s.view.Node(ctx, sid) })
}

// Subtree returns the node with sid and its descendants, parents before children; issuer.ErrNotFound when sid
// is unknown.
func (s *State) Subtree(ctx context.Context, sid string) ([]*issuer.Node, error) {
	return stateRead(ctx, s, func() ([]*issuer.Node, error) { return s.view.Subtree(ctx, sid) })
}

// WorkloadNode returns the newest root workload node of clientID bound to jkt that is active at now, or
// issuer.ErrNotFound.
func (s *State) WorkloadNode(ctx context.Context, clientID, jkt string, now time.Time) (*issuer.Node, error) {
	return stateRead(ctx, s, func() (*issuer.Node, error) { return s.view.WorkloadNode(ctx, clientID, jkt, now) })
}

// Revoke logs op and returns it as applied: with its Seq in the revocation log and the nodes it revoked, or as
// stored before for a repeated op ID. An invalid op is refused before it is logged.
func (s *State) Revoke(ctx context.Context, op issuer.Op) (issuer.Op, error) {
	if err := ctx.Err(); err != nil {
		return issuer.Op{}, err
	}
	if err := op.Validate(); err != nil {
		return issuer.Op{}, fmt.Errorf("jetstream: revoke: %w", err)
	}
	return stateWrite[issuer.Op](ctx, s, stateRevoke, &stateCommand{Op: &op})
}

// Standing answers q from the view, caught up with the log.
func (s *State) Standing(ctx context.Context, q issuer.Query) (issuer.Standing, error) {
	return stateRead(ctx, s, func() (issuer.Standing, error) { return s.view.Standing(ctx, q) })
}

// Ops returns up to limit ops of the revocation log with Seq > after, in Seq order.
func (s *State) Ops(ctx context.Context, after uint64, limit int) ([]issuer.Op, error) {
	return stateRead(ctx, s, func() ([]issuer.Op, error) { return s.view.Ops(ctx, after, limit) })
}

// Emitted returns the outbox cursor.
func (s *State) Emitted(ctx context.Context) (uint64, error) {
	return stateRead(ctx, s, func() (uint64, error) { return s.view.Emitted(ctx) })
}

// SetEmitted moves the outbox cursor forward to seq; it never moves back.
func (s *State) SetEmitted(ctx context.Context, seq uint64) error {
	_, err := s.submit(ctx, stateSetEmitted, &stateCommand{Seq: seq})
	return err
}

// Refresh returns the refresh token record with hash, or issuer.ErrNotFound.
func (s *State) Refresh(ctx context.Context, hash string) (*issuer.Refresh, error) {
	return stateRead(ctx, s, func() (*issuer.Refresh, error) { return s.view.Refresh(ctx, hash) })
}

// PutRefresh stores a new refresh token record; issuer.ErrExists when its hash is stored already.
func (s *State) PutRefresh(ctx context.Context, r *issuer.Refresh) error {
	if r.Hash == "" {
		return errors.New("jetstream: a refresh token needs a hash")
	}
	_, err := s.submit(ctx, statePutRefresh, &stateCommand{Refresh: r})
	return err
}

// RotateRefresh marks the refresh token with hash used and stores next, in one command, and returns the used
// record; issuer.ErrNotFound for an unknown hash, issuer.ErrReplay with the record when it was used before.
func (s *State) RotateRefresh(ctx context.Context, hash string, next *issuer.Refresh) (*issuer.Refresh, error) {
	if next != nil && next.Hash == "" {
		return nil, errors.New("jetstream: a refresh token needs a hash")
	}
	return stateWrite[*issuer.Refresh](ctx, s, stateRotateRefresh, &stateCommand{Hash: hash, Refresh: next})
}

// UseOnce records key until the given time; issuer.ErrReplay when key was recorded before and its time is
// still ahead of the writer's clock, which the command carries so that every replica decides alike.
func (s *State) UseOnce(ctx context.Context, key string, until time.Time) error {
	if key == "" {
		return errors.New("jetstream: a one-time key may not be empty")
	}
	_, err := s.submit(ctx, stateUseOnce, &stateCommand{Key: key, Until: until, Now: time.Now()})
	return err
}

// applyIssuerCommand applies an issuer command to the view; ok is false for a kind that is not the issuer's. A
// command its writer would not have logged is refused as malformed before it reaches the view, so that the view
// fails only for reasons of its own.
func applyIssuerCommand(view *bolt.DB, kind stateKind, cmd *stateCommand) (res stateResult, ok bool) {
	ctx := context.Background() // never cancelled: every replica must apply every command
	switch kind {
	case stateCreateClient:
		return stateNeed(cmd.Client != nil && cmd.Client.ID != "", func() stateResult { return stateResult{err: view.CreateClient(ctx, cmd.Client)} }), true
	case stateSwapClient:
		return stateNeed(cmd.Client != nil && cmd.Old != nil && cmd.Client.ID == cmd.Old.ID, func() stateResult { return applySwapClient(view, cmd.Old, cmd.Client) }), true
	case stateCreateNode:
		return stateNeed(cmd.Node != nil && cmd.Node.ID != "", func() stateResult { return stateResult{err: view.CreateNode(ctx, cmd.Node)} }), true
	case stateRevoke:
		return stateNeed(cmd.Op != nil && cmd.Op.Validate() == nil, func() stateResult { return stateResultOf(view.Revoke(ctx, *cmd.Op)) }), true
	case stateSetEmitted:
		return stateResult{err: view.SetEmitted(ctx, cmd.Seq)}, true
	case statePutRefresh:
		return stateNeed(cmd.Refresh != nil && cmd.Refresh.Hash != "", func() stateResult { return stateResult{err: view.PutRefresh(ctx, cmd.Refresh)} }), true
	case stateRotateRefresh:
		return stateNeed(cmd.Refresh == nil || cmd.Refresh.Hash != "", func() stateResult {
			return stateResultOf(view.RotateRefresh(ctx, cmd.Hash, cmd.Refresh))
		}), true
	case stateUseOnce:
		return stateNeed(cmd.Key != "", func() stateResult { return stateResult{err: view.UseOnceAt(ctx, cmd.Key, cmd.Until, cmd.Now)} }), true
	}
	return stateResult{}, false
}

// applySwapClient replaces old by next unless the stored client is no longer old. Both are compared as JSON,
// decoded from the log and the view alike, so every replica decides alike.
func applySwapClient(view *bolt.DB, old, next *issuer.Client) stateResult {
	want, err := json.Marshal(old)
	if err != nil {
		return stateResult{err: fmt.Errorf("%w: %w", errStateMalformed, err)}
	}
	return stateResultOf(view.UpdateClient(context.Background(), next.ID, func(c *issuer.Client) error {
		if stored, err := json.Marshal(c); err != nil || !bytes.Equal(stored, want) {
			return errStateClientChanged
		}
		*c = *next
		return nil
	}))
}

// stateNeed applies a command when it has the fields its kind needs.
func stateNeed(has bool, apply func() stateResult) stateResult {
	if !has {
		return stateResult{err: errStateMalformed}
	}
	return apply()
}

// stateResultOf wraps the value and error of a view method.
func stateResultOf[T any](v T, err error) stateResult { return stateResult{value: v, err: err} }
