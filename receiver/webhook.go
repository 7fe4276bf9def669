package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// WebhookSink POSTs every verified event, as an EventMessage in JSON, to a URL of a service that is not written
// in Go. Any answer outside 2xx, or no answer, is a failure: the SET stays in the inbox and is posted again with
// the receiver's backoff, so the service must de-duplicate on (iss, jti). Each request carries the header
// Idempotency-Key "<iss> <jti>" for that.
type WebhookSink struct {
	url    string
	header http.Header
	client *http.Client
}

// NewWebhookSink returns a sink posting to url with the given extra headers (for example Authorization) and
// a per-request timeout.
func NewWebhookSink(url string, header http.Header, timeout time.Duration) *WebhookSink {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &WebhookSink{url: url, header: header.Clone(), client: &http.Client{Timeout: timeout}}
}

// Handle posts one delivery.
func (w *WebhookSink) Handle(ctx context.Context, d Delivery) error {
	data, err := json.Marshal(NewEventMessage(d))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(data))
	if err != nil {
		return err
	}
	for k, vs := range w.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", d.SET.Issuer+" "+d.SET.ID)
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("receiver: webhook %s: %w", w.url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver: webhook %s answered %d", w.url, resp.StatusCode)
	}
	return nil
}
