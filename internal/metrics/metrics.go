package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ssfd/ssfd/schemas"
	"github.com/ssfd/ssfd/streams"
)

// Metrics is one process's registry and the metrics ssfd records in it.
type Metrics struct {
	reg          *prometheus.Registry
	queued       *prometheus.CounterVec
	delivered    *prometheus.CounterVec
	retried      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	push         *prometheus.HistogramVec
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	rcv          receiverMetrics
}

// New returns the metrics of a process whose streams are in store and SETs in queue. perStream is the most
// streams that get series of their own (queue depth and oldest SET age, labelled by stream_id); 0 keeps only
// the totals.
func New(store streams.Store, queue streams.Queue, perStream int) *Metrics {
	reg := prometheus.NewRegistry()
	byMethod := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ssfd", Name: name, Help: help}, []string{"method"})
	}
	m := &Metrics{
		reg:          reg,
		queued:       byMethod("sets_queued_total", "SETs signed and durably queued, by delivery method."),
		delivered:    byMethod("sets_delivered_total", "SETs delivered: push answered 202, poll acknowledged, JetStream acknowledged."),
		retried:      byMethod("sets_retried_total", "Deliveries that failed and will be tried again."),
		deadLettered: byMethod("sets_dead_lettered_total", "SETs that became dead letters (refused for good, setErrs, or too old)."),
		push: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "ssfd", Name: "push_duration_seconds",
			Help: "Duration of push requests (RFC 8935), by outcome.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
			[]string{"outcome"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ssfd", Name: "http_requests_total",
			Help: "HTTP requests served, by route, method and status code."}, []string{"route", "method", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "ssfd", Name: "http_request_duration_seconds",
			Help: "Duration of HTTP requests, by route (long polls included).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)},
			[]string{"route"}),
	}
	reg.MustRegister(m.queued, m.delivered, m.retried, m.deadLettered, m.push, m.httpRequests, m.httpDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&queueCollector{store: store, queue: queue, perStream: perStream})
	m.rcv = newReceiverMetrics(reg)
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// methodLabel names a delivery method briefly: poll, push, nats, or the URI of another one.
func methodLabel(method schemas.DeliveryMethod) string {
	switch method {
	case schemas.DeliveryPoll:
		return "poll"
	case schemas.DeliveryPush:
		return "push"
	case schemas.DeliveryNATS:
		return "nats"
	}
	return string(method)
}

// SETsQueued counts queued SETs.
func (m *Metrics) SETsQueued(method schemas.DeliveryMethod, n int) {
	m.queued.WithLabelValues(methodLabel(method)).Add(float64(n))
}

// SETsDelivered counts delivered SETs.
func (m *Metrics) SETsDelivered(method schemas.DeliveryMethod, n int) {
	m.delivered.WithLabelValues(methodLabel(method)).Add(float64(n))
}

// SETsRetried counts failed deliveries that will be retried.
func (m *Metrics) SETsRetried(method schemas.DeliveryMethod, n int) {
	m.retried.WithLabelValues(methodLabel(method)).Add(float64(n))
}

// SETsDeadLettered counts dead letters.
func (m *Metrics) SETsDeadLettered(method schemas.DeliveryMethod, n int) {
	m.deadLettered.WithLabelValues(methodLabel(method)).Add(float64(n))
}

// Pushed records one push request's duration.
func (m *Metrics) Pushed(d time.Duration, outcome string) {
	m.push.WithLabelValues(outcome).Observe(d.Seconds())
}

// ObserveHTTP records one HTTP request by its route pattern (not its path, so cardinality stays bounded).
func (m *Metrics) ObserveHTTP(route, method string, code int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}

// queueCollector reads the streams and their queues at scrape time.
type queueCollector struct {
	store     streams.Store
	queue     streams.Queue
	perStream int
}

var (
	descStreams   = prometheus.NewDesc("ssfd_streams", "Streams, by status.", []string{"status"}, nil)
	descDepth     = prometheus.NewDesc("ssfd_queue_depth", "SETs queued and not yet delivered, over all streams.", nil, nil)
	descOldest    = prometheus.NewDesc("ssfd_queue_oldest_age_seconds", "Age of the oldest undelivered SET over all streams.", nil, nil)
	descStreamDep = prometheus.NewDesc("ssfd_stream_queue_depth", "SETs queued for one stream (only for the first streams, see metrics_per_stream).", []string{"stream_id"}, nil)
	descStreamOld = prometheus.NewDesc("ssfd_stream_queue_oldest_age_seconds", "Age of the oldest undelivered SET of one stream.", []string{"stream_id"}, nil)
)

// Describe sends the descriptors.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreams, descDepth, descOldest, descStreamDep, descStreamOld} {
		ch <- d
	}
}

// Collect reads every stream's status, queue depth and oldest SET.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := c.store.ListStreams(ctx)
	if err != nil {
		return
	}
	byStatus := map[schemas.StreamStatus]int{schemas.StatusEnabled: 0, schemas.StatusPaused: 0, schemas.StatusDisabled: 0}
	total, oldest := 0, 0.0
	now := time.Now()
	for i, s := range all {
		byStatus[s.Status]++
		depth, err := c.queue.Depth(ctx, s.ID())
		if err != nil {
			continue
		}
		age := 0.0
		if items, _, err := c.queue.Pending(ctx, s.ID(), 1); err == nil && len(items) > 0 {
			age = now.Sub(items[0].Queued).Seconds()
		}
		total, oldest = total+depth, max(oldest, age)
		if i < c.perStream {
			ch <- prometheus.MustNewConstMetric(descStreamDep, prometheus.GaugeValue, float64(depth), string(s.ID()))
			ch <- prometheus.MustNewConstMetric(descStreamOld, prometheus.GaugeValue, age, string(s.ID()))
		}
	}
	for status, n := range byStatus {
		ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(n), string(status))
	}
	ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(total))
	ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, oldest)
}
