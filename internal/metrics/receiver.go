package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// receiverMetrics are the receiver's series; registrations come from the configuration, so their label stays
// bounded.
type receiverMetrics struct {
	received *prometheus.CounterVec
	handled  *prometheus.HistogramVec
	failed   *prometheus.CounterVec
}

func newReceiverMetrics(reg *prometheus.Registry) receiverMetrics {
	m := receiverMetrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ssfd", Subsystem: "receiver", Name: "sets_total",
			Help: "SETs the receiver got, by registration and outcome: accepted, duplicate, or the RFC 8935 error code."},
			[]string{"registration", "outcome"}),
		handled: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "ssfd", Subsystem: "receiver", Name: "handle_wait_seconds",
			Help:    "Time from a SET's acceptance until every handler succeeded, by registration.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20)}, []string{"registration"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ssfd", Subsystem: "receiver", Name: "handler_failures_total",
			Help: "Handling attempts that failed and will be retried, by registration."}, []string{"registration"}),
	}
	reg.MustRegister(m.received, m.handled, m.failed)
	return m
}

// SETReceived counts a SET the receiver got.
func (m *Metrics) SETReceived(registration, outcome string) {
	m.rcv.received.WithLabelValues(registration, outcome).Inc()
}

// SETHandled records a handling attempt.
func (m *Metrics) SETHandled(registration string, wait time.Duration, err error) {
	if err != nil {
		m.rcv.failed.WithLabelValues(registration).Inc()
		return
	}
	m.rcv.handled.WithLabelValues(registration).Observe(wait.Seconds())
}
