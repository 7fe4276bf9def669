package natsbus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// FollowSETs reads the SETs of one NATS-delivered stream from the start of SSF_SETS, in order, with an ordered
// (ephemeral) consumer, and calls fn with each until ctx is done. It is a tool for people; services use a
// durable consumer (docs/delivery.md).
func FollowSETs(ctx context.Context, url, streamID string, fn func(set []byte)) error {
	return follow(ctx, url, StreamSETs, SubjectSETPrefix+streamID, fn)
}

// FollowEvents reads the events the receiver republished on ssf.events.<name> (every name when name is empty)
// from the start of StreamEvents, in order, and calls fn with each until ctx is done. It is a tool for people.
func FollowEvents(ctx context.Context, url, name string, fn func(event []byte)) error {
	subject := SubjectEventsPrefix + ">"
	if name != "" {
		subject = SubjectEventsPrefix + name
	}
	return follow(ctx, url, StreamEvents, subject, fn)
}

// follow reads subject of stream from its start with an ordered consumer until ctx is done.
func follow(ctx context.Context, url, stream, subject string, fn func(data []byte)) error {
	nc, err := Connect(url, "ssfd follow")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return fmt.Errorf("natsbus: follow %s: %w", subject, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { fn(m.Data()) })
	if err != nil {
		return err
	}
	defer cc.Stop()
	<-ctx.Done()
	return nil
}
