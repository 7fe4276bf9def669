package natsbus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssfd/ssfd/streams"
)

// SETPublisher publishes SETs of NATS-delivered streams to JetStream stream StreamSETs, one subject per stream
// (ssf.set.<stream_id>), with the SET's jti as Nats-Msg-Id so that a SET published again inside the duplicate
// window is stored once. It implements relay.Publisher.
type SETPublisher struct {
	js jetstream.JetStream
}

// DuplicateWindow is how long JetStream remembers a jti to drop a republished SET.
const DuplicateWindow = 10 * time.Minute

// NewSETPublisher creates or updates the SSF_SETS stream (file storage, subjects ssf.set.>, replicas as given)
// and returns a publisher on it.
func NewSETPublisher(ctx context.Context, nc *nats.Conn, replicas int) (*SETPublisher, error) {
	js, err := openStream(ctx, nc, StreamSETs,
		"Security Event Tokens of ssfd streams delivered over NATS (urn:ssfd:delivery:nats)", SubjectSETPrefix+">", replicas)
	if err != nil {
		return nil, err
	}
	return &SETPublisher{js: js}, nil
}

// openStream creates or updates a JetStream stream of ssfd (file storage, DuplicateWindow, a week of history) on
// subjects and returns the JetStream context it was made with.
func openStream(ctx context.Context, nc *nats.Conn, name, description, subjects string, replicas int) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsbus: JetStream: %w", err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: description,
		Subjects:    []string{subjects},
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		Duplicates:  DuplicateWindow,
		MaxAge:      7 * 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: create stream %s: %w", name, err)
	}
	return js, nil
}

// PublishSETs publishes the items in order without waiting between them, then waits for every acknowledgement.
func (p *SETPublisher) PublishSETs(ctx context.Context, id streams.ID, items []streams.Item) error {
	subject := SubjectSETPrefix + string(id)
	futures := make([]jetstream.PubAckFuture, 0, len(items))
	for _, it := range items {
		msg := &nats.Msg{Subject: subject, Data: []byte(it.SET), Header: nats.Header{}}
		msg.Header.Set("Content-Type", "application/secevent+jwt")
		f, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(it.JTI))
		if err != nil {
			return fmt.Errorf("natsbus: publish %s: %w", it.JTI, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("natsbus: JetStream did not store %s: %w", f.Msg().Header.Get(jetstream.MsgIDHeader), err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
