// Package receiver consumes SETs from any SSF 1.0 transmitter: it verifies each SET in the order of spec/ssf.md
// §1.3, stores it durably with its (iss, jti) before it is acknowledged, and hands it to handlers registered per
// event type (On) or for every type (Dispatcher.HandleAll), retrying them from the store until they succeed.
//
// A Receiver holds the registrations' verifiers, the RFC 8935 push endpoint (RegisterPush) and the inbox; a
// Poller receives an RFC 8936 stream; a Keeper runs one registration: it discovers the transmitter, finds or
// creates the stream, asks for verification and keeps the stream healthy. NATS-delivered streams are read by
// internal/natsbus and handed to Receiver.ReceiveAll. Client speaks the SSF management API to any transmitter.
//
// receiver imports schemas and internal/keys. It must not import transmitter or issuer.
package receiver
