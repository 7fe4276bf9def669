// Package transmitter is the SSF 1.0 transmitter: the metadata document, the stream
// management API, event intake, the router that picks the streams an event belongs on, and the signer that turns
// an event into one SET per stream.
//
// transmitter imports schemas, streams and internal/keys. It must not import receiver or issuer; the roles meet in
// internal/server through small interfaces.
package transmitter
