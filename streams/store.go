package streams

import (
	"context"
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// Store keeps stream configurations and the subjects on them. Implementations are safe for concurrent use and
// pass the storage/storetest suite. Reads return copies that the caller may change.
type Store interface {
	// CreateStream stores a new stream; ErrConflict if its ID exists.
	CreateStream(ctx context.Context, s *Stream) error
	// GetStream returns a stream; ErrNotFound if there is none.
	GetStream(ctx context.Context, id ID) (*Stream, error)
	// ListStreams returns every stream, oldest first.
	ListStreams(ctx context.Context) ([]*Stream, error)
	// UpdateStream reads a stream, lets change modify it, and stores the result in one transaction. If change
	// returns an error nothing is written and the error is returned; ErrNotFound if there is no such stream.
	UpdateStream(ctx context.Context, id ID, change func(*Stream) error) (*Stream, error)
	// DeleteStream removes a stream with its subjects; ErrNotFound if there is none. The stream's queue is
	// purged by the caller through Queue.Purge.
	DeleteStream(ctx context.Context, id ID) error
	// SetSubject records a subject on a stream as included (add-subject, SSF 1.0 §8.1.3.2) or excluded
	// (remove-subject, §8.1.3.3), replacing any earlier entry for an equal subject; ErrNotFound if there is no
	// such stream.
	SetSubject(ctx context.Context, id ID, entry SubjectEntry) error
	// Subjects lists the subject entries of a stream in the order they were first set; ErrNotFound if there is
	// no such stream.
	Subjects(ctx context.Context, id ID) ([]SubjectEntry, error)
}

// SubjectEntry is a subject a receiver added to a stream (Included) or removed from it. Under default_subjects
// NONE a stream carries events about its included subjects; under ALL it carries every event except those about
// excluded subjects (SSF 1.0 §7.1, §8.1.3).
type SubjectEntry struct {
	Subject  schemas.Subject `json:"subject"`
	Included bool            `json:"included"`
}

// Item is one signed SET waiting in a stream's queue.
type Item struct {
	// Stream is the stream the SET is for.
	Stream ID
	// JTI is the SET's jti, the key receivers acknowledge.
	JTI string
	// SET is the signed SET in compact serialization.
	SET string
	// Queued is when the SET was queued.
	Queued time.Time
}

// DeliveryError is a dead letter: a SET that will not be delivered as it is, because the receiver reported it as
// invalid (poll setErrs, RFC 8936 §2.4; push 400 with a permanent code, RFC 8935 §2.3) or because it was
// retried for too long. It keeps the SET, so that an operator can inspect it and send it again.
type DeliveryError struct {
	// JTI identifies the SET.
	JTI string `json:"jti"`
	// SET is the signed SET, when the queue still held it.
	SET string `json:"set,omitempty"`
	// Error is the receiver's error code and description, or the transmitter's reason.
	Error schemas.SETError `json:"error"`
	// At is when the SET became a dead letter.
	At time.Time `json:"at"`
}

// Queue holds signed SETs per stream, durably, oldest first. Implementations pass the storage/storetest suite.
type Queue interface {
	// Enqueue adds SETs, possibly for many streams, and returns only once they are durable: a SET it accepted
	// survives a crash. Either every item is stored or none is.
	Enqueue(ctx context.Context, items []Item) error
	// Pending returns up to max unacknowledged SETs of a stream, oldest first, and whether more are waiting.
	Pending(ctx context.Context, id ID, max int) (items []Item, more bool, err error)
	// Ack removes acknowledged SETs; an unknown jti is ignored (spec/ssf.md PO-12).
	Ack(ctx context.Context, id ID, jtis []string) error
	// Reject moves SETs from the queue to the stream's dead letters with the reason given, keeping the SET.
	// A jti that is not queued is still recorded, without a SET (RFC 8936 §2.4 lets receivers name any jti).
	Reject(ctx context.Context, id ID, errs []DeliveryError) error
	// Rejected lists the dead letters of a stream, oldest first.
	Rejected(ctx context.Context, id ID) ([]DeliveryError, error)
	// Redrive moves dead letters that still have their SET back to the end of the queue; an empty jtis means all.
	// It returns how many it moved.
	Redrive(ctx context.Context, id ID, jtis []string) (int, error)
	// DropRejected deletes dead letters; an empty jtis means all. It returns how many it deleted.
	DropRejected(ctx context.Context, id ID, jtis []string) (int, error)
	// Depth returns the number of unacknowledged SETs of a stream.
	Depth(ctx context.Context, id ID) (int, error)
	// Purge removes every SET and recorded error of a stream.
	Purge(ctx context.Context, id ID) error
}
