package transmitter

import (
	"context"
	"time"

	"github.com/ssfd/ssfd/streams"
)

// streamRefresh bounds how long a delivery worker uses its copy of its stream. Every change to a stream also wakes
// its worker with Notify (Wake.Changed), which then reads it again; new SETs (Queued) do not.
const streamRefresh = time.Second

// StreamCopy is a delivery worker's copy of its stream, so that a SET costs no stream read: it is read again
// after Forget (call it when Wake.Changed says so) or once it is older than a second. The zero value is empty.
type StreamCopy struct {
	stream  *streams.Stream
	fetched time.Time
}

// Forget makes the next Get read the stream again.
func (c *StreamCopy) Forget() { c.fetched = time.Time{} }

// Get returns the copy of stream id, reading it from store first when it was forgotten or is too old. moved
// reports that this read found a status or delivery other than the previous copy's (or is the first read): SETs
// read ahead under the old ones must be read again, since a disabled stream's queue was purged and a paused one
// holds. Errors are the store's, streams.ErrNotFound for a deleted stream.
func (c *StreamCopy) Get(ctx context.Context, store streams.Store, id streams.ID) (s *streams.Stream, moved bool, err error) {
	if c.stream != nil && time.Since(c.fetched) <= streamRefresh {
		return c.stream, false, nil
	}
	s, err = store.GetStream(ctx, id)
	if err != nil {
		return nil, false, err
	}
	old := c.stream
	moved = old == nil || old.Status != s.Status || old.PausedForInactivity != s.PausedForInactivity ||
		!old.UpdatedAt.Equal(s.UpdatedAt) || old.Config.Delivery != s.Config.Delivery
	c.stream, c.fetched = s, time.Now()
	return s, moved, nil
}
