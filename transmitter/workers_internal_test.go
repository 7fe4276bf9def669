package transmitter

import (
	"context"
	"testing"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// TestQueuedStartsNoWorkerOfAnotherMethod: an emit's wake-up for a stream of another delivery method starts no
// worker, but wakes one that runs (the stream may have just changed method), without marking it changed.
func TestQueuedStartsNoWorkerOfAnotherMethod(t *testing.T) {
	w := NewWorkers(func(ctx context.Context, _ streams.ID, _ *Wake) { <-ctx.Done() })
	ctx, cancel := context.WithCancel(context.Background())
	w.mu.Lock()
	w.ctx, w.method = ctx, schemas.DeliveryPush // as RunFor(ctx, store, push) sets them
	w.mu.Unlock()
	defer func() { cancel(); w.wg.Wait() }()
	worker := func(id streams.ID) *Wake {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.running[id]
	}
	woken := func(wk *Wake) bool {
		select {
		case <-wk.C:
			return true
		default:
			return false
		}
	}

	w.Queued(schemas.DeliveryNATS, "nats-stream")
	if worker("nats-stream") != nil {
		t.Fatal("a push worker started for a SET queued on a NATS stream")
	}
	w.Queued(schemas.DeliveryPush, "push-stream")
	if wk := worker("push-stream"); wk == nil || !woken(wk) || wk.Changed() {
		t.Fatal("a SET queued on a push stream did not start its worker, or marked the stream changed")
	}

	w.Notify("nats-stream") // a change: it may have become a push stream
	wk := worker("nats-stream")
	if wk == nil || !woken(wk) || !wk.Changed() {
		t.Fatal("Notify did not start the worker of a changed stream, or did not mark it changed")
	}
	w.Queued(schemas.DeliveryNATS, "nats-stream") // routed before the change: the running worker must still look
	if !woken(wk) || wk.Changed() {
		t.Fatal("a SET queued with the stream's previous method did not wake its running worker, or marked it changed")
	}
}
