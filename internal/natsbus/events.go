package natsbus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamEvents is the JetStream stream that captures the receiver's republished events (ssf.events.>).
const StreamEvents = "SSF_EVENTS"

// EventPublisher republishes verified events as JSON on ssf.events.<event name>. Each message carries a
// Nats-Msg-Id, so an event published twice inside DuplicateWindow (a SET handled again after a crash) is stored
// once in StreamEvents and a durable consumer sees it once; a plain subscriber sees what is published.
type EventPublisher struct {
	js jetstream.JetStream
}

// NewEventPublisher creates or updates the StreamEvents stream (file storage, a week of history, replicas as
// given) and returns a publisher on it.
func NewEventPublisher(ctx context.Context, nc *nats.Conn, replicas int) (*EventPublisher, error) {
	js, err := openStream(ctx, nc, StreamEvents, "Events verified by the ssfd receiver, one subject per event type",
		SubjectEventsPrefix+">", replicas)
	if err != nil {
		return nil, err
	}
	return &EventPublisher{js: js}, nil
}

// Publish publishes data on ssf.events.<name> with the given message ID and waits for JetStream to store it.
func (p *EventPublisher) Publish(ctx context.Context, name, msgID string, data []byte) error {
	msg := &nats.Msg{Subject: SubjectEventsPrefix + name, Data: data, Header: nats.Header{}}
	msg.Header.Set("Content-Type", "application/json")
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("natsbus: publish on %s%s: %w", SubjectEventsPrefix, name, err)
	}
	return nil
}
