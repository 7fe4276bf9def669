// Package receiver consumes SETs from any SSF 1.0 transmitter: it verifies each SET in the
// order of spec/ssf.md §1.3, de-duplicates by (iss, jti), and dispatches verified events to handlers. It holds the
// push endpoint, the poll client, the NATS consumer and the stream-management client.
//
// receiver imports schemas and internal/keys. It must not import transmitter or issuer.
package receiver
