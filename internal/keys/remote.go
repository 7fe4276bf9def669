package keys

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// maxJWKSBytes caps a fetched JWKS document.
const maxJWKSBytes = 1 << 20

// RemoteJWKS is a KeySource over a transmitter's jwks_uri (spec/ssf.md SEC-11). It fetches on first use, again
// after the max age, and again when asked for an unknown kid, but at most once per minimum refetch interval. A
// failed refetch keeps the keys it had.
type RemoteJWKS struct {
	url      string
	client   *http.Client
	minFetch time.Duration
	maxAge   time.Duration
	now      func() time.Time

	mu        sync.Mutex // serialises fetches; concurrent lookups share one
	keys      *JWKS
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last attempt, successful or not
	lastErr   error     // of the last attempt
}

// RemoteOption configures a RemoteJWKS.
type RemoteOption func(*RemoteJWKS)

// WithHTTPClient sets the HTTP client (default: 10 s timeout, TLS 1.2 or later).
func WithHTTPClient(c *http.Client) RemoteOption { return func(r *RemoteJWKS) { r.client = c } }

// WithMinRefetchInterval sets how often an unknown kid may trigger a fetch (default 1 minute).
func WithMinRefetchInterval(d time.Duration) RemoteOption {
	return func(r *RemoteJWKS) { r.minFetch = d }
}

// WithMaxAge sets how long fetched keys are used before the next lookup refreshes them (default 1 hour).
func WithMaxAge(d time.Duration) RemoteOption { return func(r *RemoteJWKS) { r.maxAge = d } }

// WithRemoteClock replaces time.Now, for tests.
func WithRemoteClock(now func() time.Time) RemoteOption { return func(r *RemoteJWKS) { r.now = now } }

// NewRemoteJWKS returns a cache of the JWKS at url; nothing is fetched until the first lookup.
func NewRemoteJWKS(url string, opts ...RemoteOption) (*RemoteJWKS, error) {
	if url == "" {
		return nil, errors.New("keys: a remote JWKS needs a URL")
	}
	r := &RemoteJWKS{
		url:      url,
		minFetch: time.Minute,
		maxAge:   time.Hour,
		now:      time.Now,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}},
	}
	for _, opt := range opts {
		opt(r)
	}
	return r, nil
}

// Key returns the key with kid, fetching the JWKS when needed.
func (r *RemoteJWKS) Key(ctx context.Context, kid string) (*Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	stale := r.keys == nil || now.Sub(r.fetchedAt) >= r.maxAge
	if k, ok := r.lookup(kid); ok && !stale {
		return k, nil
	}
	if r.triedAt.IsZero() || now.Sub(r.triedAt) >= r.minFetch {
		r.lastErr = r.fetch(ctx)
	}
	if k, ok := r.lookup(kid); ok {
		return k, nil
	}
	if r.lastErr != nil { // the kid may well be in the key set we could not fetch: say so
		return nil, fmt.Errorf("%w: %q: %w (%s: %w)", ErrUnknownKey, kid, ErrKeysUnavailable, r.url, r.lastErr)
	}
	return nil, fmt.Errorf("%w: %q is not in %s", ErrUnknownKey, kid, r.url)
}

func (r *RemoteJWKS) lookup(kid string) (*Key, bool) {
	if r.keys == nil {
		return nil, false
	}
	return r.keys.Key(kid)
}

// Refresh fetches the JWKS now, whatever the intervals say.
func (r *RemoteJWKS) Refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastErr = r.fetch(ctx)
	return r.lastErr
}

// fetch downloads and parses the JWKS; the caller holds r.mu. On failure the old keys stay.
func (r *RemoteJWKS) fetch(ctx context.Context) error {
	r.triedAt = r.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", r.url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return err
	}
	if len(data) > maxJWKSBytes {
		return fmt.Errorf("GET %s: the JWKS is larger than 1 MiB", r.url)
	}
	set, err := ParseJWKS(data)
	if err != nil {
		return err
	}
	r.keys, r.fetchedAt = set, r.now()
	return nil
}
