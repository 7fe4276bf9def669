// Package streams owns the stream domain of an SSF transmitter: configuration rules, event
// negotiation, the status machine (enabled, paused, disabled), the subjects on a stream and verification state,
// together with the Store and Queue interfaces that storage backends implement and their errors.
//
// streams imports schemas. It must not import transmitter, receiver, issuer, storage backends, NATS, bbolt or echo.
package streams
