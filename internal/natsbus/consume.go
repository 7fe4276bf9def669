package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Verdict is what a consumer decided about one message of a fetched batch.
type Verdict int

// The verdicts.
const (
	// Ack: the message was taken care of; JetStream forgets it.
	Ack Verdict = iota
	// Term: the message is refused for good; JetStream never redelivers it.
	Term
	// Retry: the message could not be taken care of now; JetStream redelivers it after a second.
	Retry
)

// consumeBatch is how many SETs one fetch asks for.
const consumeBatch = 256

// ConsumerName returns the durable JetStream consumer name of a receiver registration: the name with every
// character JetStream does not allow in a consumer name replaced by '_'.
func ConsumerName(registration string) string {
	return "ssfd-receiver-" + strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, registration)
}

// ConsumeSETs reads the SETs of an ssfd stream delivered over NATS (ssf.set.<streamID> in StreamSETs) through the
// durable consumer durable, in batches, until ctx is done. settle gets each batch's SETs in order and returns one
// verdict for each. Because the consumer is durable, a restarted receiver resumes where it stopped.
func ConsumeSETs(ctx context.Context, nc *nats.Conn, durable, streamID string, log *slog.Logger,
	settle func(ctx context.Context, sets []string) []Verdict) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("natsbus: JetStream: %w", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, StreamSETs, jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "ssfd receiver of stream " + streamID,
		FilterSubject: SubjectSETPrefix + streamID,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: (settlers + 2) * consumeBatch,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("natsbus: consumer for %s%s: %w", SubjectSETPrefix, streamID, err)
	}
	// Two batches are settled at a time, so that the next batch is fetched and verified while the previous one
	// is being stored; MaxAckPending leaves room for both.
	batches := make(chan []jetstream.Msg)
	var settling sync.WaitGroup
	for range settlers {
		settling.Go(func() {
			for msgs := range batches {
				// Settle what was fetched even when ctx ends meanwhile: a message fetched and left unanswered is
				// redelivered only after AckWait.
				settleBatch(context.WithoutCancel(ctx), msgs, settle)
			}
		})
	}
	defer func() {
		close(batches)
		settling.Wait()
	}()
	for ctx.Err() == nil {
		msgs, err := fetch(cons)
		if len(msgs) > 0 {
			batches <- msgs
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			log.Warn("NATS fetch failed", "consumer", durable, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// settlers is how many fetched batches are settled at once.
const settlers = 2

// settleBatch hands a batch to settle and answers each message with its verdict.
func settleBatch(ctx context.Context, msgs []jetstream.Msg, settle func(ctx context.Context, sets []string) []Verdict) {
	sets := make([]string, len(msgs))
	for i, m := range msgs {
		sets[i] = string(m.Data())
	}
	for i, v := range settle(ctx, sets) {
		switch v {
		case Ack:
			_ = msgs[i].Ack() // a lost ack means a redelivery, which the receiver's replay window absorbs
		case Term:
			_ = msgs[i].Term()
		default:
			_ = msgs[i].NakWithDelay(time.Second)
		}
	}
}

// fetch takes what is waiting, or else waits up to a second for a first message. The wait is short rather than
// cancellable because a cancelled fetch drops the messages on their way, which JetStream then redelivers only
// after AckWait; a second is also the longest a stop waits for the consumer.
func fetch(cons jetstream.Consumer) ([]jetstream.Msg, error) {
	var msgs []jetstream.Msg
	batch, err := cons.FetchNoWait(consumeBatch)
	if err != nil {
		return nil, err
	}
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) > 0 || batch.Error() != nil {
		return msgs, batch.Error()
	}
	if batch, err = cons.Fetch(consumeBatch, jetstream.FetchMaxWait(time.Second)); err != nil {
		return nil, err
	}
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, batch.Error()
}
