// Package metrics holds ssfd's Prometheus metrics: counters of SETs queued, delivered, retried and
// dead-lettered per delivery method (it implements transmitter.Observer), the push latency histogram, queue
// gauges read from storage at scrape time (per stream only up to a configured number of streams, so cardinality
// stays bounded), HTTP request metrics, and the Go runtime and process collectors. Every process has its own
// registry; nothing is global.
//
// metrics imports schemas, streams and transmitter (for the Observer interface). It must not import receiver,
// issuer, storage backends, NATS or echo.
package metrics
