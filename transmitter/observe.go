package transmitter

import (
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// Observer is told what the transmitter and its delivery methods do with SETs, so that the process can count it
// (internal/metrics implements it with Prometheus). Methods must be cheap and safe for concurrent use.
type Observer interface {
	// SETsQueued: n SETs were durably queued for streams of this delivery method.
	SETsQueued(method schemas.DeliveryMethod, n int)
	// SETsDelivered: n SETs left the queue delivered (push 202, poll acknowledgement, JetStream acknowledgement).
	SETsDelivered(method schemas.DeliveryMethod, n int)
	// SETsRetried: n deliveries failed and will be tried again.
	SETsRetried(method schemas.DeliveryMethod, n int)
	// SETsDeadLettered: n SETs became dead letters.
	SETsDeadLettered(method schemas.DeliveryMethod, n int)
	// Pushed: one push request took d and ended with outcome (delivered, retry, dead_letter).
	Pushed(d time.Duration, outcome string)
}

// NopObserver observes nothing.
type NopObserver struct{}

// SETsQueued does nothing.
func (NopObserver) SETsQueued(schemas.DeliveryMethod, int) {}

// SETsDelivered does nothing.
func (NopObserver) SETsDelivered(schemas.DeliveryMethod, int) {}

// SETsRetried does nothing.
func (NopObserver) SETsRetried(schemas.DeliveryMethod, int) {}

// SETsDeadLettered does nothing.
func (NopObserver) SETsDeadLettered(schemas.DeliveryMethod, int) {}

// Pushed does nothing.
func (NopObserver) Pushed(time.Duration, string) {}

// WithObserver sets who is told about queued SETs (default: nobody).
func WithObserver(o Observer) Option {
	return func(t *Transmitter) error { t.observer = o; return nil }
}
