package server_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/schemas"
)

// metricValue returns the value of the series whose line starts with name{labels} (or name alone).
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetricsMoveByTheRightAmounts(t *testing.T) {
	h := newHarness(t, fastRetries, func(c *config.Config) { c.MetricsPerStream = 10 })
	rx := newPushReceiver(t)
	pollStream := h.createPollStream()
	h.createPushStream(rx.URL, "")
	emitTxns(t, h, 3, "metrics")
	waitFor(t, "the push stream got its 3 SETs", func() bool { return len(rx.requests()) == 3 })
	got := h.poll(pollStream, schemas.PollRequest{ReturnImmediately: true})
	var jtis []string
	for jti := range got.Sets {
		jtis = append(jtis, jti)
	}
	zero := 0
	h.poll(pollStream, schemas.PollRequest{MaxEvents: &zero, ReturnImmediately: true, Ack: jtis})

	scrape := func() string {
		status, _, body := h.call(http.MethodGet, "/metrics", "", nil)
		if status != http.StatusOK {
			t.Fatalf("/metrics: %d", status)
		}
		return string(body)
	}
	var body string
	waitFor(t, "the push acknowledgements are committed", func() bool {
		body = scrape()
		return metricValue(t, body, `ssfd_queue_depth`) == 0
	})
	for series, want := range map[string]float64{
		`ssfd_sets_queued_total{method="poll"}`:                            3,
		`ssfd_sets_queued_total{method="push"}`:                            3,
		`ssfd_sets_delivered_total{method="poll"}`:                         3,
		`ssfd_sets_delivered_total{method="push"}`:                         3,
		`ssfd_streams{status="enabled"}`:                                   2,
		`ssfd_stream_queue_depth{stream_id="` + pollStream.StreamID + `"}`: 0,
		`ssfd_push_duration_seconds_count{outcome="delivered"}`:            3,
	} {
		if got := metricValue(t, body, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if metricValue(t, body, `ssfd_http_requests_total{code="202",method="POST",route="/api/v1/events"}`) != 3 {
		t.Errorf("http requests by route:\n%s", grep(body, "ssfd_http_requests_total"))
	}
	if !strings.Contains(body, "go_goroutines") {
		t.Error("the Go runtime collector is missing")
	}
}

func grep(body, prefix string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
