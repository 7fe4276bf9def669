// Package revocation keeps the in-memory index of revoked tokens, session nodes
// and issued-before cutoffs, maps CAEP and RISC events to revocation operations, and provides the net/http and
// echo middleware that refuses revoked tokens.
//
// revocation imports schemas and receiver. It must not import transmitter or issuer.
package revocation
