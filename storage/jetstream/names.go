package jetstream

import (
	"crypto/sha256"
	"encoding/base64"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// streamsLayout names the JetStream assets of Streams for one Options.Prefix P:
//
//   - KV bucket P_streams (JetStream stream KV_P_streams): key c.<stream> holds the JSON streams.Stream of a
//     stream; key s.<stream>.<subject> holds one subject entry of it (streamsSubjectRecord).
//   - KV bucket P_deadletters (KV_P_deadletters): key <stream>.<jti> holds a dead letter, the JSON
//     streams.DeliveryError.
//   - stream P_QUEUE on subjects P.queue.>: subject P.queue.<stream>.<jti> holds one queued SET (queueRecord).
//
// <stream> is the stream ID in base64url: IDs may hold '.' and '~', which a subject token or key cannot carry
// as they are. <jti> and <subject> are the base64url SHA-256 of the jti and of the subject's canonical key, so
// that any jti (any length, any character) makes one token of fixed length. The prefix stays as it is in
// subjects (not lowercased): two prefixes that differ in case name different streams, so they must not share
// subjects either.
type streamsLayout struct{ prefix string }

// configBucket, deadBucket and queueStream name the two KV buckets and the queue stream.
func (l streamsLayout) configBucket() string { return l.prefix + "_streams" }
func (l streamsLayout) deadBucket() string   { return l.prefix + "_deadletters" }
func (l streamsLayout) queueStream() string  { return l.prefix + "_QUEUE" }

// queueWildcard is the subject space of the queue stream.
func (l streamsLayout) queueWildcard() string { return l.prefix + ".queue.>" }

// queueFilter matches every queued SET of a stream.
func (l streamsLayout) queueFilter(id streams.ID) string {
	return l.prefix + ".queue." + streamsIDToken(id) + ".>"
}

// queueSubject is the subject of one queued SET.
func (l streamsLayout) queueSubject(id streams.ID, jti string) string {
	return l.prefix + ".queue." + streamsIDToken(id) + "." + streamsHashToken(jti)
}

// configKey is the key of a stream's configuration in the streams bucket.
func (l streamsLayout) configKey(id streams.ID) string { return "c." + streamsIDToken(id) }

// configKeys matches every configuration key.
func (l streamsLayout) configKeys() string { return "c.>" }

// subjectKey is the key of one subject entry of a stream in the streams bucket.
func (l streamsLayout) subjectKey(id streams.ID, s schemas.Subject) string {
	return "s." + streamsIDToken(id) + "." + streamsHashToken(s.Key())
}

// subjectKeys matches every subject entry of a stream.
func (l streamsLayout) subjectKeys(id streams.ID) string { return "s." + streamsIDToken(id) + ".>" }

// deadKey is the key of a stream's dead letter in the dead letters bucket.
func (l streamsLayout) deadKey(id streams.ID, jti string) string {
	return streamsIDToken(id) + "." + streamsHashToken(jti)
}

// deadKeys matches every dead letter of a stream.
func (l streamsLayout) deadKeys(id streams.ID) string { return streamsIDToken(id) + ".>" }

// kvStream is the JetStream stream behind a KV bucket, and kvSubject the subject of a key (or key filter) in it.
func (l streamsLayout) kvStream(bucket string) string       { return "KV_" + bucket }
func (l streamsLayout) kvSubject(bucket, key string) string { return "$KV." + bucket + "." + key }

// streamsIDToken encodes a stream ID as one subject token and key part.
func streamsIDToken(id streams.ID) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// streamsHashToken encodes any string as one subject token and key part of fixed length.
func streamsHashToken(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
