package streams

import "errors"

// Errors of the stream domain and its stores. The transmitter translates them to SSF 1.0 §8 status codes at the
// HTTP boundary; stores wrap them with %w.
var (
	// ErrNotFound: no stream with this ID (for this client).
	ErrNotFound = errors.New("streams: not found")
	// ErrInvalid: a request breaks a rule of SSF 1.0 §8 (answered with 400).
	ErrInvalid = errors.New("streams: invalid request")
	// ErrConflict: the request conflicts with the stream's state (answered with 409).
	ErrConflict = errors.New("streams: conflict")
	// ErrTooSoon: a verification came before min_verification_interval passed (answered with 429).
	ErrTooSoon = errors.New("streams: too many requests")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("streams: store closed")
)
