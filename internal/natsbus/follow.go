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
	nc, err := Connect(url, "ssfd follow")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.OrderedConsumer(ctx, StreamSETs, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{SubjectSETPrefix + streamID}})
	if err != nil {
		return fmt.Errorf("natsbus: follow %s%s: %w", SubjectSETPrefix, streamID, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { fn(m.Data()) })
	if err != nil {
		return err
	}
	defer cc.Stop()
	<-ctx.Done()
	return nil
}
