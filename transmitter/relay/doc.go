// Package relay delivers the SETs of streams whose delivery method is urn:ssfd:delivery:nats to the message bus:
// each SET is published to the JetStream subject ssf.set.<stream_id>, deduplicated by its jti, and leaves the
// stream's queue only once JetStream acknowledged it. Order is kept per stream.
//
// relay declares the Publisher it needs; internal/natsbus implements it. relay imports streams, schemas and
// transmitter; it must not import NATS, receiver or issuer.
package relay
