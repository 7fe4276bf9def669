// Package revocation is the resource-server side of real-time revocation (spec/agent-auth.md §3, §4): the
// in-memory index of revoked tokens, session nodes and issued-before cutoffs (Index), the mapping of CAEP and RISC
// events to revocation ops (OpsFromSET), and the Guard that validates the built-in issuer's access tokens and
// refuses revoked ones in net/http and echo middleware and in a check API for gateways.
//
// revocation imports schemas and internal/keys (and echo for its middleware). It must not import transmitter or
// issuer, and NATS stays in internal/natsbus: feeds hand it ops.
package revocation
