// Package schemas holds the wire vocabulary of the OpenID Shared Signals Framework 1.0,
// CAEP 1.0 and RISC 1.0: Security Event Token claims (RFC 8417 as profiled by SSF §4), every event type with its
// exact claims, subject identifiers (RFC 9493 and SSF §3) with their matching rules (SSF §8.1.3.1), the stream
// configuration and transmitter metadata objects, the RFC 8935 error codes and the RFC 8936 poll messages.
//
// It also embeds one JSON Schema (draft 2020-12) per event type and for the SET envelope, subject identifiers and
// stream configuration; the Validate functions check a document against them and report every problem with its
// JSON path.
//
// Parsing is strict: a value built by a Parse function is valid. Legacy identifiers (spec/ssf.md §14.2) are
// accepted on input where they are unambiguous and never emitted.
//
// schemas imports only the standard library and the JSON Schema validator. It must not import any other package
// of this module.
package schemas
