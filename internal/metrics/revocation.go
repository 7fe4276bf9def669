package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RevocationSource is what the revocation metrics read: the index of this process and the state of its feed.
type RevocationSource interface {
	// Len is the number of live entries of the index.
	Len() int
	// Applied counts the revoking ops applied since start.
	Applied() int64
	// Ready reports whether the index was restored.
	Ready() bool
}

// WatchRevocation registers the revocation metrics of src (spec/agent-auth.md §5): index size, ops applied and
// refused (refused counts the feed's ops the index could not apply), readiness and feed staleness (stale reports
// whether the feed is stale), and returns the histogram that observes decision → applied latency.
func (m *Metrics) WatchRevocation(src RevocationSource, stale func() bool, refused func() int64) *prometheus.HistogramVec {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "ssfd", Subsystem: "revocation", Name: name, Help: help}, f)
	}
	boolean := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	lag := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "ssfd", Subsystem: "revocation",
		Name: "apply_lag_seconds", Help: "Time from the issuer's commit of a revocation op to its application in this index, by feed.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}, []string{"feed"})
	m.reg.MustRegister(
		gauge("index_entries", "Live entries of the revocation index (revoked jtis, nodes and cutoffs).", func() float64 { return float64(src.Len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "ssfd", Subsystem: "revocation", Name: "ops_applied_total",
			Help: "Revoking ops applied to the index since start."}, func() float64 { return float64(src.Applied()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "ssfd", Subsystem: "revocation", Name: "ops_refused_total",
			Help: "Ops of the revocation feed the index could not apply (not JSON, unknown kind): a feed it does not understand."},
			func() float64 { return float64(refused()) }),
		gauge("index_ready", "1 once the index was restored from the feed; checks fail closed before.", func() float64 { return boolean(src.Ready()) }),
		gauge("feed_stale", "1 while the revocation feed is stale (NATS disconnected).", func() float64 { return boolean(stale()) }),
		lag,
	)
	return lag
}

// ObserveApplyLag records how long after its decision an op was applied.
func ObserveApplyLag(h *prometheus.HistogramVec, feed string, lag time.Duration) {
	h.WithLabelValues(feed).Observe(lag.Seconds())
}

// ObserveCheck returns a function that records the duration and outcome of each revocation check the check API
// makes, for revocation.GuardConfig.Observe.
func (m *Metrics) ObserveCheck() func(d time.Duration, outcome string) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "ssfd", Subsystem: "revocation",
		Name: "check_duration_seconds", Help: "Token checks of the check API (signature, claims, DPoP, index), by outcome.",
		Buckets: prometheus.ExponentialBuckets(0.000001, 2, 20)}, []string{"outcome"})
	m.reg.MustRegister(h)
	return func(d time.Duration, outcome string) { h.WithLabelValues(outcome).Observe(d.Seconds()) }
}

// ObserveToken returns a function that records each token request of the issuer by grant and outcome ("issued"
// or the OAuth error code), for issuer.WithObserver.
func (m *Metrics) ObserveToken() func(grant, outcome string, d time.Duration) {
	count := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ssfd", Subsystem: "issuer", Name: "token_requests_total",
		Help: "Token endpoint requests by grant type and outcome (issued, or the OAuth error code)."}, []string{"grant", "outcome"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "ssfd", Subsystem: "issuer", Name: "token_duration_seconds",
		Help: "Duration of token endpoint requests, by grant type.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"grant"})
	m.reg.MustRegister(count, dur)
	return func(grant, outcome string, d time.Duration) {
		count.WithLabelValues(grant, outcome).Inc()
		dur.WithLabelValues(grant).Observe(d.Seconds())
	}
}
