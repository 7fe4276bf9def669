package poll

import (
	"sync"

	"github.com/ssfd/ssfd/streams"
)

// Waker wakes the long polls of a stream when SETs are queued for it or its status changes. It implements
// transmitter.Notifier. The zero value is not usable; call NewWaker.
type Waker struct {
	mu     sync.Mutex
	chans  map[streams.ID]chan struct{}
	closed chan struct{}
	once   sync.Once
}

// NewWaker returns a Waker with no waiting polls.
func NewWaker() *Waker {
	return &Waker{chans: map[streams.ID]chan struct{}{}, closed: make(chan struct{})}
}

// Close ends every waiting long poll (each answers with what it has, usually nothing) and every later one at
// once: the server is shutting down and should not wait out the long-poll timeout.
func (w *Waker) Close() { w.once.Do(func() { close(w.closed) }) }

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

// WakeAll wakes every waiting poll; each reads its queue again and waits on if it is still empty. Clustered
// ssfd calls it when its NATS connection comes back, since wake-ups from other replicas may have been missed.
func (w *Waker) WakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, ch := range w.chans {
		close(ch)
		delete(w.chans, id)
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

// Waiting reports whether a long poll is waiting on id.
func (w *Waker) Waiting(id streams.ID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.chans[id]
	return ok
}
