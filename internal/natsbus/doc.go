// Package natsbus starts the embedded nats-server, opens connections, and holds the one
// catalogue of NATS subjects and JetStream names that ssfd uses (ssf.intake, ssf.set, ssf.events, ssf.revocation,
// ssf.wake).
//
// natsbus must not import transmitter, receiver or issuer.
package natsbus
