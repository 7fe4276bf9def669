package natsbus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// IntakeQueue is the queue group of intake subscribers, so that each request is handled by one replica.
const IntakeQueue = "ssfd-intake"

// ServeIntake answers request/reply messages on ssf.intake.<tenant> with handle's reply. Each request gets up to
// timeout to be handled.
func ServeIntake(nc *nats.Conn, timeout time.Duration, handle func(ctx context.Context, tenant string, body []byte) []byte) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(SubjectIntakePrefix+"*", IntakeQueue, func(m *nats.Msg) {
		if m.Reply == "" {
			return // intake is request/reply: without a reply subject nobody would learn the outcome
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_ = m.Respond(handle(ctx, m.Subject[len(SubjectIntakePrefix):], m.Data))
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: subscribe to %s*: %w", SubjectIntakePrefix, err)
	}
	return sub, nil
}
