// Package jetstream is the clustered storage backend on NATS JetStream: several ssfd replicas share one NATS
// cluster and see one state. It implements the same interfaces as storage/bolt and passes the same conformance
// suites (storage/storetest), on streams and KV buckets with a configurable replica count:
//
//   - Streams (streams.Store and streams.Queue): stream configurations and subjects in a KV bucket, changed by
//     compare-and-set on revisions; each stream's queue in one JetStream stream, one subject per SET, so that an
//     acknowledgement purges a subject; dead letters in a KV bucket.
//   - State (issuer.Store and receiver.Inbox): a replicated state machine. Every write is a command on a
//     JetStream stream, whose RAFT group gives the total order; every replica applies the commands in that order
//     to a local cache (a storage/bolt database, rebuilt at every open from the latest snapshot and the log
//     after it) and answers reads from it once it has applied everything the log held when the read began.
//     The log and its snapshots are the system of record; the cache may be deleted at any time.
//   - Rings: the signing key rings in a KV bucket, rotated by compare-and-set and watched by every replica.
//
// jetstream must not import echo, nor bbolt except through storage/bolt for State's cache.
package jetstream
