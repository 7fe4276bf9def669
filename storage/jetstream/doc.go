// Package jetstream is the clustered storage backend on NATS JetStream KV buckets and
// streams; it implements the same interfaces as storage/bolt and passes the same conformance suites.
//
// jetstream must not import bbolt or echo.
package jetstream
