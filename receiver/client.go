package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// MetadataURL returns where the metadata of issuer lives: /.well-known/ssf-configuration inserted between the
// host and the issuer's path (SSF 1.0 §7.2, spec/ssf.md MD-01).
func MetadataURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("receiver: issuer %q must be an absolute URL without query or fragment", issuer)
	}
	u.Path = "/.well-known/ssf-configuration" + strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// APIError is a non-success answer of a transmitter's API: the status and, when the body had one, the error code
// and description.
type APIError struct {
	Status      int
	Code        string
	Description string
}

// Error renders the status and the transmitter's explanation.
func (e *APIError) Error() string {
	msg := fmt.Sprintf("transmitter answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// Client calls an SSF 1.0 transmitter's management and poll APIs (SSF 1.0 §8, RFC 8936) with a bearer token.
// It sends only receiver-supplied members (spec/ssf.md CRT-01) and checks the iss of every stream it gets back
// (API-05).
type Client struct {
	md    schemas.TransmitterMetadata
	http  *http.Client
	token func(context.Context) (string, error)
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient sets the HTTP client (default: 30 s timeout, TLS 1.2 minimum via the default transport).
func WithHTTPClient(hc *http.Client) ClientOption { return func(c *Client) { c.http = hc } }

// WithToken sets a static bearer token.
func WithToken(token string) ClientOption {
	return func(c *Client) { c.token = func(context.Context) (string, error) { return token, nil } }
}

// WithTokenSource sets a function that returns a current bearer token for each call.
func WithTokenSource(f func(context.Context) (string, error)) ClientOption {
	return func(c *Client) { c.token = f }
}

// Discover fetches and checks the metadata of issuer and returns a Client for its endpoints. The metadata's
// issuer must be identical to the one asked for (spec/ssf.md MD-05).
func Discover(ctx context.Context, issuer string, opts ...ClientOption) (*Client, error) {
	c := &Client{http: &http.Client{Timeout: 30 * time.Second}}
	for _, opt := range opts {
		opt(c)
	}
	mdURL, err := MetadataURL(issuer)
	if err != nil {
		return nil, err
	}
	if err := c.do(ctx, http.MethodGet, mdURL, nil, false, &c.md); err != nil {
		return nil, fmt.Errorf("receiver: fetch metadata from %s: %w", mdURL, err)
	}
	if c.md.Issuer != issuer {
		return nil, fmt.Errorf("receiver: metadata at %s names issuer %q, not %q (SSF 1.0 §7.2.4)", mdURL, c.md.Issuer, issuer)
	}
	return c, nil
}

// Metadata returns the transmitter's metadata.
func (c *Client) Metadata() schemas.TransmitterMetadata { return c.md }

// StreamRequest holds the receiver-supplied members of a create or replace request (SSF 1.0 §8.1.1).
type StreamRequest struct {
	EventsRequested []schemas.EventType `json:"events_requested,omitempty"`
	Delivery        *schemas.Delivery   `json:"delivery,omitempty"`
	Description     string              `json:"description,omitempty"`
	// SigningAlgorithm asks an ssfd transmitter for another signing algorithm; other transmitters ignore it.
	SigningAlgorithm string `json:"ssfd_signing_alg,omitempty"`
}

// CreateStream creates a stream (SSF 1.0 §8.1.1.1).
func (c *Client) CreateStream(ctx context.Context, req StreamRequest) (*schemas.StreamConfiguration, error) {
	return c.stream(ctx, http.MethodPost, c.md.ConfigurationEndpoint, req)
}

// GetStream reads one stream (SSF 1.0 §8.1.1.2).
func (c *Client) GetStream(ctx context.Context, id string) (*schemas.StreamConfiguration, error) {
	return c.stream(ctx, http.MethodGet, withQuery(c.md.ConfigurationEndpoint, id), nil)
}

// ListStreams reads every stream of this receiver (SSF 1.0 §8.1.1.2).
func (c *Client) ListStreams(ctx context.Context) ([]schemas.StreamConfiguration, error) {
	var out []schemas.StreamConfiguration
	if err := c.do(ctx, http.MethodGet, c.md.ConfigurationEndpoint, nil, true, &out); err != nil {
		return nil, err
	}
	for i := range out {
		if err := c.checkIssuer(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// UpdateStream sends a PATCH with stream_id and the given receiver-supplied members (SSF 1.0 §8.1.1.3).
func (c *Client) UpdateStream(ctx context.Context, id string, members map[string]any) (*schemas.StreamConfiguration, error) {
	body := map[string]any{"stream_id": id}
	for k, v := range members {
		body[k] = v
	}
	return c.stream(ctx, http.MethodPatch, c.md.ConfigurationEndpoint, body)
}

// ReplaceStream sends a PUT with stream_id and the complete receiver-supplied members (SSF 1.0 §8.1.1.4).
func (c *Client) ReplaceStream(ctx context.Context, id string, req StreamRequest) (*schemas.StreamConfiguration, error) {
	raw, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	body["stream_id"] = id
	return c.stream(ctx, http.MethodPut, c.md.ConfigurationEndpoint, body)
}

// DeleteStream deletes a stream (SSF 1.0 §8.1.1.5).
func (c *Client) DeleteStream(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, withQuery(c.md.ConfigurationEndpoint, id), nil, true, nil)
}

// Status reads a stream's status (SSF 1.0 §8.1.2.1).
func (c *Client) Status(ctx context.Context, id string) (*schemas.StreamStatusResponse, error) {
	var out schemas.StreamStatusResponse
	return &out, c.do(ctx, http.MethodGet, withQuery(c.md.StatusEndpoint, id), nil, true, &out)
}

// SetStatus changes a stream's status (SSF 1.0 §8.1.2.2).
func (c *Client) SetStatus(ctx context.Context, id string, status schemas.StreamStatus, reason string) (*schemas.StreamStatusResponse, error) {
	var out schemas.StreamStatusResponse
	req := schemas.StreamStatusResponse{StreamID: id, Status: status, Reason: reason}
	return &out, c.do(ctx, http.MethodPost, c.md.StatusEndpoint, req, true, &out)
}

// AddSubject adds a subject to a stream (SSF 1.0 §8.1.3.2); verified nil leaves the member out.
func (c *Client) AddSubject(ctx context.Context, id string, subject schemas.Subject, verified *bool) error {
	req := schemas.AddSubjectRequest{StreamID: id, Subject: subject, Verified: verified}
	return c.do(ctx, http.MethodPost, c.md.AddSubjectEndpoint, req, true, nil)
}

// RemoveSubject removes a subject from a stream (SSF 1.0 §8.1.3.3).
func (c *Client) RemoveSubject(ctx context.Context, id string, subject schemas.Subject) error {
	req := schemas.RemoveSubjectRequest{StreamID: id, Subject: subject}
	return c.do(ctx, http.MethodPost, c.md.RemoveSubjectEndpoint, req, true, nil)
}

// Verify asks for a verification event carrying state (SSF 1.0 §8.1.4.2).
func (c *Client) Verify(ctx context.Context, id, state string) error {
	req := schemas.VerificationRequest{StreamID: id, State: state}
	return c.do(ctx, http.MethodPost, c.md.VerificationEndpoint, req, true, nil)
}

// Poll sends one RFC 8936 poll request to a stream's poll endpoint_url, exactly as given (spec/ssf.md DLV-03).
// Set the HTTP client's timeout longer than the transmitter's long-poll timeout.
func (c *Client) Poll(ctx context.Context, endpointURL string, req schemas.PollRequest) (*schemas.PollResponse, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPost, endpointURL, req, true, &raw); err != nil {
		return nil, err
	}
	return schemas.ParsePollResponse(raw)
}

func withQuery(endpoint, id string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint
	}
	q := u.Query()
	q.Set("stream_id", id)
	u.RawQuery = q.Encode()
	return u.String()
}

func (c *Client) stream(ctx context.Context, method, endpoint string, body any) (*schemas.StreamConfiguration, error) {
	var out schemas.StreamConfiguration
	if err := c.do(ctx, method, endpoint, body, true, &out); err != nil {
		return nil, err
	}
	return &out, c.checkIssuer(&out)
}

// checkIssuer enforces spec/ssf.md API-05: every stream returned carries the transmitter's issuer.
func (c *Client) checkIssuer(cfg *schemas.StreamConfiguration) error {
	if cfg.Issuer != c.md.Issuer {
		return fmt.Errorf("receiver: stream %s has iss %q, not the transmitter's %q", cfg.StreamID, cfg.Issuer, c.md.Issuer)
	}
	return nil
}

// do sends one request with a JSON body (when body is not nil) and decodes a JSON answer into out.
func (c *Client) do(ctx context.Context, method, endpoint string, body any, auth bool, out any) error {
	if endpoint == "" {
		return errors.New("receiver: the transmitter does not offer this endpoint")
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth && c.token != nil {
		tok, err := c.token(ctx)
		if err != nil {
			return fmt.Errorf("receiver: get a token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := &APIError{Status: resp.StatusCode}
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(data, &e) == nil {
			apiErr.Code, apiErr.Description = e.Error, e.Description
		}
		return apiErr
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("receiver: %s %s answered with malformed JSON: %w", method, endpoint, err)
	}
	return nil
}
