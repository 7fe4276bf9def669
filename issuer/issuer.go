package issuer

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
)

// Config holds the issuer's limits; zero fields take the defaults of DefaultConfig.
type Config struct {
	// AccessTokenTTL is the life of autonomous and depth-1 access tokens (default 10m, at most 15m).
	AccessTokenTTL time.Duration
	// DelegatedTokenTTL is the life of tokens at depth 2 and deeper (default 5m).
	DelegatedTokenTTL time.Duration
	// SessionTTL is the absolute life of a session node and its refresh tokens (default 8h).
	SessionTTL time.Duration
	// MaxDelegationDepth is the default depth cap (default 3, at most HardMaxDepth).
	MaxDelegationDepth int
	// RequireDPoP refuses tokens without a DPoP proof, except SSF management tokens.
	RequireDPoP bool
	// AssertionMaxAge bounds how far in the future a client assertion's exp may be (default 5m).
	AssertionMaxAge time.Duration
}

// DefaultConfig returns the defaults of spec/agent-auth.md §2.5.
func DefaultConfig() Config {
	return Config{AccessTokenTTL: 10 * time.Minute, DelegatedTokenTTL: 5 * time.Minute, SessionTTL: 8 * time.Hour,
		MaxDelegationDepth: DefaultMaxDepth, AssertionMaxAge: 5 * time.Minute}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.AccessTokenTTL <= 0 {
		c.AccessTokenTTL = d.AccessTokenTTL
	}
	c.AccessTokenTTL = min(c.AccessTokenTTL, MaxAccessTokenTTL)
	if c.DelegatedTokenTTL <= 0 {
		c.DelegatedTokenTTL = d.DelegatedTokenTTL
	}
	c.DelegatedTokenTTL = min(c.DelegatedTokenTTL, c.AccessTokenTTL)
	if c.SessionTTL <= 0 {
		c.SessionTTL = d.SessionTTL
	}
	if c.MaxDelegationDepth <= 0 {
		c.MaxDelegationDepth = d.MaxDelegationDepth
	}
	c.MaxDelegationDepth = min(c.MaxDelegationDepth, HardMaxDepth)
	if c.AssertionMaxAge <= 0 {
		c.AssertionMaxAge = d.AssertionMaxAge
	}
	return c
}

// Signer signs access tokens and publishes their keys; *keys.Ring implements it.
type Signer interface {
	Sign(payload []byte, typ string) (string, error)
	Active() *keys.Key
	JWKS() *keys.JWKS
	Key(ctx context.Context, kid string) (*keys.Key, error)
}

// Issuer is the OAuth 2.0 authorization server: it authenticates clients, grants tokens, keeps the session tree
// and revocation log in its Store, and hands every revocation to its EventSink as CAEP events.
type Issuer struct {
	url      string
	store    Store
	signer   Signer
	verifier *keys.Verifier
	cfg      Config
	sink     EventSink
	log      *slog.Logger
	now      func() time.Time

	outboxMu sync.Mutex // one outbox pass at a time
	wake     chan struct{}
	rotate   func() error
	reserved []string
	pub      OpPublisher
	observe  func(grant, outcome string, d time.Duration)
	// unavailable tells a store briefly out of reach from a broken one; nil: every unexpected error is a 500.
	unavailable func(error) bool
}

// Option configures an Issuer.
type Option func(*Issuer)

// WithUnavailable sets how the issuer recognizes errors of a store that is briefly out of reach (a clustered
// store electing a leader): those requests answer 503 temporarily_unavailable with Retry-After, not 500.
func WithUnavailable(is func(error) bool) Option { return func(i *Issuer) { i.unavailable = is } }

// WithConfig sets the issuer's limits.
func WithConfig(c Config) Option { return func(is *Issuer) { is.cfg = c.withDefaults() } }

// WithEventSink sets where revocations go as CAEP events; without one they are only logged.
func WithEventSink(s EventSink) Option { return func(is *Issuer) { is.sink = s } }

// WithOpPublisher sets where revocation ops go for resource servers, at once when they are recorded and again
// from the outbox.
func WithOpPublisher(p OpPublisher) Option { return func(is *Issuer) { is.pub = p } }

// WithObserver sets a function told about every token request: its grant type (or "invalid" when the request
// did not parse), its outcome ("issued" or the OAuth error code) and its duration.
func WithObserver(observe func(grant, outcome string, d time.Duration)) Option {
	return func(is *Issuer) { is.observe = observe }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(is *Issuer) { is.log = l } }

// WithKeyRotation gives the issuer a way to rotate (and save) its signing keys: it is called right after the
// active key was withdrawn by a key watermark, so that issuance goes on with the next key.
func WithKeyRotation(rotate func() error) Option { return func(is *Issuer) { is.rotate = rotate } }

// WithReservedClientIDs keeps client IDs that other credentials already use (static tokens of the
// configuration, the dev admin) from being registered: a stream belongs to a client ID, so two credentials with
// one ID would share streams.
func WithReservedClientIDs(ids ...string) Option {
	return func(is *Issuer) { is.reserved = append(is.reserved, ids...) }
}

// New returns an issuer at issuerURL (an absolute URL without query or fragment) over store, signing with
// signer.
func New(issuerURL string, store Store, signer Signer, opts ...Option) (*Issuer, error) {
	u, err := url.Parse(issuerURL)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("issuer: %q is not an absolute URL without query or fragment", issuerURL)
	}
	if store == nil || signer == nil {
		return nil, errors.New("issuer: a store and a signer are required")
	}
	is := &Issuer{url: strings.TrimSuffix(issuerURL, "/"), store: store, signer: signer, cfg: DefaultConfig(),
		log: slog.New(slog.DiscardHandler), now: time.Now, wake: make(chan struct{}, 1)}
	for _, opt := range opts {
		opt(is)
	}
	is.verifier, err = keys.NewVerifier(signer, keys.WithType(keys.TypeAccessToken),
		keys.WithAlgorithms(keys.ES256, keys.EdDSA, keys.RS256, keys.PS256))
	if err != nil {
		return nil, err
	}
	return is, nil
}

// URL returns the issuer identifier.
func (is *Issuer) URL() string { return is.url }

// TokenEndpoint returns the URL of the token endpoint, the audience of client assertions and the htu of DPoP
// proofs.
func (is *Issuer) TokenEndpoint() string { return is.url + PathToken }

// Store returns the issuer's store.
func (is *Issuer) Store() Store { return is.store }

// JWKS returns the published access-token keys.
func (is *Issuer) JWKS() *keys.JWKS { return is.signer.JWKS() }

// ErrInvalidToken is returned by VerifyAccessToken for a token that is malformed, not ours, expired or revoked.
var ErrInvalidToken = errors.New("issuer: invalid access token")

// VerifyAccessToken checks an access token as a resource server of this issuer would, against the
// authoritative store: typ at+jwt, signature, iss, exp, and revocation (jti, every node of dlg.path, watermarks).
// The audience is the caller's to check.
func (is *Issuer) VerifyAccessToken(ctx context.Context, token string) (*Claims, error) {
	c, kid, err := is.parse(ctx, token)
	if err != nil {
		return nil, err
	}
	if c.ExpiresAt <= is.now().Unix() {
		return nil, fmt.Errorf("%w: expired", ErrInvalidToken)
	}
	st, err := is.store.Standing(ctx, Query{JTI: c.JTI, Path: c.Path(), Keys: c.Keys(kid), IssuedAt: time.Unix(c.IssuedAt, 0)})
	if err != nil {
		return nil, err
	}
	if st.Revoked != "" {
		return nil, fmt.Errorf("%w: revoked (%s)", ErrInvalidToken, st.Revoked)
	}
	return c, nil
}

// parse verifies the signature and issuer of one of our access tokens and decodes its claims; it does not check
// exp or revocation.
func (is *Issuer) parse(ctx context.Context, token string) (*Claims, string, error) {
	payload, h, err := is.verifier.Verify(ctx, token)
	if err != nil {
		if errors.Is(err, keys.ErrKeysUnavailable) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, "", fmt.Errorf("%w: claims: %w", ErrInvalidToken, err)
	}
	if c.Issuer != is.url || c.JTI == "" || c.ClientID == "" || c.Subject == "" || len(c.Audience) == 0 {
		return nil, "", fmt.Errorf("%w: not an access token of this issuer", ErrInvalidToken)
	}
	return &c, h.KeyID, nil
}

// newID returns prefix and 128 random bits, base64url.
func newID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// newSecret returns 256 random bits, base64url: client secrets and refresh tokens.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
