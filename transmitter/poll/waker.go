package poll

import (
	"sync"

	"github.com/ssfd/ssfd/streams"
)

// Waker wakes the long polls of a stream when SETs are queued for it or its status changes. It implements
// transmitter.Notifier. The zero value is not usable; call NewWaker.
type Waker struct {
	mu    sync.Mutex
	chans map[streams.ID]chan struct{}
}

// NewWaker returns a Waker with no waiting polls.
func NewWaker() *Waker { return &Waker{chans: map[streams.ID]chan struct{}{}} }

// Notify wakes every poll waiting on the given streams.
func (w *Waker) Notify(ids ...streams.ID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		if ch, ok := w.chans[id]; ok {
			close(ch)
			delete(w.chans, id)
		}
	}
}

// wait returns a channel that is closed at the next Notify of id. Take it before looking at the queue, so that
// a SET queued in between still wakes the caller.
func (w *Waker) wait(id streams.ID) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.chans[id]
	if !ok {
		ch = make(chan struct{})
		w.chans[id] = ch
	}
	return ch
}
