package jetstream

import (
	"context"
	"time"

	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/storage/bolt"
)

// The receiver's commands.
const (
	stateAccept  stateKind = "accept"
	stateHandled stateKind = "handled"
	stateForget  stateKind = "forget"
)

var _ receiver.Inbox = (*State)(nil)

// Accept logs the verified SET; applied in log order, the first Accept of an (iss, jti) stores it and reports
// true, and every other one inside the window, through any replica, reports false (spec/ssf.md VAL-12). The
// SET is in the replicated log when Accept returns (VAL-13).
func (s *State) Accept(ctx context.Context, e receiver.Entry, until time.Time) (bool, error) {
	return stateWrite[bool](ctx, s, stateAccept, &stateCommand{Entry: &e, Until: until})
}

// Waiting returns up to max entries waiting to be handled whose Seq is greater than after, oldest first.
func (s *State) Waiting(ctx context.Context, after uint64, max int) ([]receiver.Entry, error) {
	return stateRead(ctx, s, func() ([]receiver.Entry, error) { return s.view.Waiting(ctx, after, max) })
}

// Len counts the entries waiting to be handled.
func (s *State) Len(ctx context.Context) (int, error) {
	return stateRead(ctx, s, func() (int, error) { return s.view.Len(ctx) })
}

// Handled removes handled entries; their (iss, jti) stay remembered until their time passes.
func (s *State) Handled(ctx context.Context, seqs []uint64) error {
	_, err := s.submit(ctx, stateHandled, &stateCommand{Seqs: seqs})
	return err
}

// Forget drops the (iss, jti) records whose time passed before now and returns how many it dropped.
func (s *State) Forget(ctx context.Context, now time.Time) (int, error) {
	return stateWrite[int](ctx, s, stateForget, &stateCommand{Now: now})
}

// applyInboxCommand applies a receiver command to the view; ok is false for a kind that is not the receiver's.
func applyInboxCommand(view *bolt.DB, kind stateKind, cmd *stateCommand) (res stateResult, ok bool) {
	ctx := context.Background() // never cancelled: every replica must apply every command
	switch kind {
	case stateAccept:
		return stateNeed(cmd.Entry != nil, func() stateResult { return stateResultOf(view.Accept(ctx, *cmd.Entry, cmd.Until)) }), true
	case stateHandled:
		return stateResult{err: view.Handled(ctx, cmd.Seqs)}, true
	case stateForget:
		return stateResultOf(view.Forget(ctx, cmd.Now)), true
	}
	return stateResult{}, false
}
