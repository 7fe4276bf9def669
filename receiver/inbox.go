package receiver

import (
	"context"
	"time"
)

// Entry is a verified SET waiting in the inbox to be handled.
type Entry struct {
	// Seq orders the entries and names one for Done.
	Seq uint64
	// Registration is the transmitter registration the SET came through.
	Registration string
	// Issuer and JTI identify the SET for replay protection (spec/ssf.md VAL-12).
	Issuer string
	JTI    string
	// Claims is the SET's JWS payload, verified.
	Claims []byte
	// Received is when the SET was accepted.
	Received time.Time
}

// Inbox is the receiver's durable record of accepted SETs: the replay window on (iss, jti), and the SETs
// accepted but not yet handled. A SET is acknowledged to its transmitter (push 202, poll ack, NATS ack) only
// after Accept returned, and handled after that (spec/ssf.md VAL-13: persist first, then acknowledge; act
// later), so a crash loses nothing that was acknowledged.
type Inbox interface {
	// Accept stores a verified SET for handling and remembers (iss, jti) until until, in one durable step. It
	// reports false, storing nothing, when (iss, jti) was accepted before and is still remembered: a replay,
	// to be acknowledged like a first delivery but not handled twice.
	Accept(ctx context.Context, e Entry, until time.Time) (bool, error)
	// Waiting returns up to max entries waiting to be handled whose Seq is greater than after, oldest first.
	Waiting(ctx context.Context, after uint64, max int) ([]Entry, error)
	// Len counts the entries waiting to be handled.
	Len(ctx context.Context) (int, error)
	// Handled removes handled entries; their (iss, jti) stay remembered until their time passes.
	Handled(ctx context.Context, seqs []uint64) error
	// Forget drops the (iss, jti) records whose time passed before now and returns how many it dropped.
	Forget(ctx context.Context, now time.Time) (int, error)
}
