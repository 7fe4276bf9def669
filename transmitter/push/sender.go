package push

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// Result says what became of one push.
type Result int

// The results of a push.
const (
	// Delivered: the receiver answered 202.
	Delivered Result = iota
	// Retry: a recoverable failure (network, timeout, 5xx, 429, a temporary RFC 8935 code); send it again later.
	Retry
	// Permanent: the receiver refused the SET for good; it becomes a dead letter.
	Permanent
)

// Outcome is the result of one push with what the receiver said.
type Outcome struct {
	Result Result
	// Status is the HTTP status, 0 when no answer came.
	Status int
	// Error is the receiver's RFC 8935 error, or the transmitter's description of the failure.
	Error schemas.SETError
	// RetryAfter is the receiver's Retry-After, when it sent one.
	RetryAfter time.Duration
}

// Sender POSTs SETs to receivers (RFC 8935 §2): Content-Type application/secevent+jwt, Accept application/json,
// the stream's authorization_header verbatim when there is one and no Authorization header otherwise
// (spec/ssf.md DLV-01, DLV-02), no redirects, a timeout on every request, keep-alive reused, and the SSRF guard
// on every dial.
type Sender struct {
	client *http.Client
}

// NewSender returns a sender that dials through guard with the given per-request timeout.
func NewSender(guard *Guard, timeout time.Duration) *Sender {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: guard.Control}
	transport := &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost:   64, // as many as pushes may be in flight: many streams often share one receiver host
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
	}
	return &Sender{client: &http.Client{
		Transport:     transport,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Send pushes one SET.
func (s *Sender) Send(ctx context.Context, d schemas.Delivery, set string) Outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.EndpointURL, strings.NewReader(set))
	if err != nil {
		return Outcome{Result: Permanent, Error: schemas.SETError{Err: schemas.ErrInvalidRequest, Description: "the endpoint_url cannot be used: " + err.Error()}}
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Language", "en")
	if d.AuthorizationHeader != "" {
		req.Header.Set("Authorization", d.AuthorizationHeader)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrTargetRefused) {
			return Outcome{Result: Retry, Error: schemas.SETError{Description: "target refused at dial time: " + err.Error()}}
		}
		return Outcome{Result: Retry, Error: schemas.SETError{Description: "no answer: " + err.Error()}}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return classify(resp, body)
}

// classify turns a receiver's answer into an Outcome (RFC 8935 §2.2–§2.4, spec/ssf.md PU-22, PU-23, PU-30).
func classify(resp *http.Response, body []byte) Outcome {
	o := Outcome{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	switch {
	case resp.StatusCode == http.StatusAccepted:
		o.Result = Delivered
		return o
	case resp.StatusCode == http.StatusBadRequest:
		var e schemas.SETError
		if json.Unmarshal(body, &e) != nil || e.Err == "" {
			o.Result, o.Error = Permanent, schemas.SETError{Err: schemas.ErrInvalidRequest, Description: "400 without an RFC 8935 error body"}
			return o
		}
		o.Error = e
		if e.Err.Permanent() || !e.Err.Known() {
			o.Result = Permanent
		} else {
			o.Result = Retry
		}
		return o
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		o.Result = Permanent
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		o.Result = Retry // redirects are not followed (SSRF); the receiver must fix its endpoint_url
	default:
		o.Result = Retry // 401/403 (credentials being refreshed), 404, 429, 5xx: recoverable
	}
	o.Error = schemas.SETError{Description: fmt.Sprintf("receiver answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))}
	return o
}

// retryAfter reads a Retry-After header in seconds or as an HTTP date; 0 when absent or unreadable.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
