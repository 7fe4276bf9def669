// Package issuer is the built-in OAuth 2.0 authorization server for AI agents and workloads:
// client credentials, RFC 8693 token exchange with delegation chains, introspection, revocation, kill switches and
// the session/delegation tree. Every revocation it makes is handed to an EventSink as a CAEP event.
//
// issuer imports schemas and internal/keys. It must not import transmitter or receiver.
package issuer
