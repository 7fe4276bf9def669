package revocation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ssfd/ssfd/internal/keys"
)

// Defaults of GuardConfig.
const (
	// DefaultSkew is the clock skew allowed on exp, nbf and DPoP iat (spec/agent-auth.md §2.5).
	DefaultSkew = 60 * time.Second
	// DefaultProofCacheSize bounds how many DPoP proof jtis are remembered at once.
	DefaultProofCacheSize = 1 << 20
)

// GuardConfig configures a Guard: what it trusts (Issuer, Keys, Algorithms), who it is (Audiences, PublicURL),
// where it looks up revocations (Index), and what it does when the revocation feed is stale (Stale, Introspect,
// HighRiskScopes; spec/agent-auth.md §3.5 and §6.5).
type GuardConfig struct {
	// Issuer is the exact iss the tokens must carry. Required.
	Issuer string
	// Audiences are this resource server's names; a token's aud must contain one of them. Required.
	Audiences []string
	// Keys finds the issuer's token-signing keys by kid: a *keys.RemoteJWKS of its /oauth/jwks in production.
	// Required.
	Keys keys.KeySource
	// Index answers the revocation check (spec/agent-auth.md §3.4). Required.
	Index *Index
	// Skew is the clock skew allowed on exp, nbf and DPoP proof iat (default DefaultSkew).
	Skew time.Duration
	// Now replaces time.Now, for tests.
	Now func() time.Time
	// Introspect asks the issuer (RFC 7662) whether token is active; it is used only while Stale reports the
	// revocation feed stale. Optional.
	Introspect func(ctx context.Context, token string) (active bool, err error)
	// HighRiskScopes are refused (503, fail closed) while the feed is stale and introspection cannot vouch for
	// the token. Optional.
	HighRiskScopes []string
	// Stale reports whether the revocation feed is stale (no heartbeat, stream paused) and why. Optional: without
	// it the feed is taken as fresh.
	Stale func() (reason string, stale bool)
	// Algorithms is the access-token alg allow-list (default ES256, EdDSA, RS256, PS256).
	Algorithms []keys.Algorithm
	// PublicURL is the scheme and authority under which clients reach this server ("https://rs.example"), used
	// to check a DPoP proof's htu; the request path is appended. Optional: by default "https://" + Host when the
	// request came over TLS, else "http://" + Host. Forwarding headers are never trusted.
	PublicURL string
	// Observe, when set, is told how long each decision took and its outcome ("allow" or the denial's error code,
	// "revoked" for a revocation), for metrics.
	Observe func(d time.Duration, outcome string)
	// ProofCacheSize bounds how many DPoP proofs are remembered for replay detection (default
	// DefaultProofCacheSize); when it is full, bound tokens are refused with 503 until old proofs age out.
	ProofCacheSize int
	// SharedProofs, when set, also remembers every DPoP proof where the other replicas of this resource server see
	// it (ssfd's check API in a cluster uses the shared state), so that a proof replayed to another replica is
	// refused too. Optional: by default proofs are remembered by this Guard only.
	SharedProofs ProofStore
}

// ProofStore remembers DPoP proofs for a resource server's replicas.
type ProofStore interface {
	// Remember records key until the given time and reports whether it was new. An error means the store could
	// not tell; the request is then refused with 503, never accepted unchecked.
	Remember(ctx context.Context, key string, until time.Time) (fresh bool, err error)
}

// Guard checks access tokens of the built-in issuer at a resource server, in the order of spec/agent-auth.md
// §2.5 (scheme, typ, alg and kid, signature, iss, aud, exp/nbf, DPoP proof, revocation), falling back to
// introspection or failing closed while the revocation feed is stale. It is safe for concurrent use.
type Guard struct {
	cfg      GuardConfig
	verifier *keys.Verifier
	proofs   *proofCache
}

// NewGuard checks cfg, fills in its defaults and returns a Guard. Every missing or bad field is reported.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("revocation: GuardConfig.Issuer is required"))
	}
	if len(cfg.Audiences) == 0 || slices.Contains(cfg.Audiences, "") {
		errs = append(errs, errors.New("revocation: GuardConfig.Audiences needs at least one non-empty audience"))
	}
	if cfg.Keys == nil {
		errs = append(errs, errors.New("revocation: GuardConfig.Keys is required"))
	}
	if cfg.Index == nil {
		errs = append(errs, errors.New("revocation: GuardConfig.Index is required"))
	}
	if cfg.Skew < 0 || cfg.ProofCacheSize < 0 {
		errs = append(errs, errors.New("revocation: GuardConfig.Skew and ProofCacheSize must not be negative"))
	}
	if cfg.PublicURL != "" {
		if u, err := url.Parse(cfg.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") ||
			u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, errors.New("revocation: GuardConfig.PublicURL must be an http(s) URL without query"))
		}
	}
	cfg = withDefaults(cfg)
	if cfg.Keys == nil {
		return nil, errors.Join(errs...)
	}
	v, err := keys.NewVerifier(cfg.Keys, keys.WithType(keys.TypeAccessToken), keys.WithAlgorithms(cfg.Algorithms...))
	if err != nil {
		errs = append(errs, fmt.Errorf("revocation: GuardConfig.Algorithms: %w", err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	return &Guard{cfg: cfg, verifier: v, proofs: newProofCache(2*cfg.Skew+time.Second, cfg.ProofCacheSize)}, nil
}

func withDefaults(cfg GuardConfig) GuardConfig {
	if cfg.Skew == 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Algorithms == nil {
		cfg.Algorithms = []keys.Algorithm{keys.ES256, keys.EdDSA, keys.RS256, keys.PS256}
	}
	if cfg.ProofCacheSize == 0 {
		cfg.ProofCacheSize = DefaultProofCacheSize
	}
	return cfg
}

// presentation is what a request shows the guard: its credentials and, for the DPoP proof, its method and URL.
type presentation struct {
	authorization []string // Authorization header values
	dpop          []string // DPoP header values
	queryToken    bool     // an access_token query parameter is present
	method        string
	url           string // query and fragment are ignored
}

// verdict is an accepted token: its claims, the kid that signed it, and whether the revocation feed was stale.
type verdict struct {
	claims   *Claims
	kid      string
	degraded bool
}

// Authorize checks the access token of r and returns its claims and the kid of the key that signed it. A refusal
// is a *Denial carrying the status, error code and WWW-Authenticate challenge to answer with. The checks run in
// the order of spec/agent-auth.md §2.5; a request while the revocation feed is stale is accepted only as §3.5
// allows (see GuardConfig.Stale); Middleware records that state for Degraded.
func (g *Guard) Authorize(r *http.Request) (*Claims, string, error) {
	v, d := g.authorize(r.Context(), g.present(r))
	if d != nil {
		return nil, "", d
	}
	return v.claims, v.kid, nil
}

// present reads what r presents; the URL for the DPoP htu is the base URL plus the request path.
func (g *Guard) present(r *http.Request) presentation {
	return presentation{
		authorization: r.Header.Values("Authorization"),
		dpop:          r.Header.Values("DPoP"),
		queryToken:    r.URL.Query().Has("access_token"),
		method:        r.Method,
		url:           g.base(r) + r.URL.EscapedPath(),
	}
}

// base is the scheme and authority clients reach the guard under: PublicURL, else the Host of r with https when
// r came over TLS. Forwarding headers are not trusted.
func (g *Guard) base(r *http.Request) string {
	if g.cfg.PublicURL != "" {
		return g.cfg.PublicURL
	}
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// authorize runs every check on p and reports the decision to Observe.
func (g *Guard) authorize(ctx context.Context, p presentation) (verdict, *Denial) {
	if g.cfg.Observe == nil {
		return g.decide(ctx, p)
	}
	start := time.Now()
	v, d := g.decide(ctx, p)
	outcome := "allow"
	switch {
	case d != nil && d.Description == DescriptionRevoked:
		outcome = "revoked"
	case d != nil && d.Code != "":
		outcome = d.Code
	case d != nil:
		outcome = "no_token"
	}
	g.cfg.Observe(time.Since(start), outcome)
	return v, d
}

// decide runs every check on p.
func (g *Guard) decide(ctx context.Context, p presentation) (verdict, *Denial) {
	token, dpopScheme, d := credentials(p)
	if d != nil {
		return verdict{}, d
	}
	claims, kid, d := g.verifyToken(ctx, token, dpopScheme)
	if d != nil {
		return verdict{}, d
	}
	if d := g.checkTime(claims, dpopScheme); d != nil {
		return verdict{}, d
	}
	if d := g.checkBinding(ctx, claims, token, p, dpopScheme); d != nil {
		return verdict{}, d
	}
	bound := claims.Cnf != nil
	switch reason := g.cfg.Index.Check(claims.Token(kid)); reason {
	case "":
	case ReasonNotReady:
		return verdict{}, unavailable("the revocation status is not known yet")
	default:
		return verdict{}, invalidToken(bound, DescriptionRevoked)
	}
	degraded, d := g.degraded(ctx, claims, token, bound)
	if d != nil {
		return verdict{}, d
	}
	return verdict{claims: claims, kid: kid, degraded: degraded}, nil
}

// degraded applies spec/agent-auth.md §3.5 and §6.5 while the revocation feed is stale: introspection decides
// when configured; without an answer from it, tokens with a high-risk scope are refused and others pass. It
// reports whether the feed was stale.
func (g *Guard) degraded(ctx context.Context, c *Claims, token string, bound bool) (bool, *Denial) {
	if g.cfg.Stale == nil {
		return false, nil
	}
	if _, stale := g.cfg.Stale(); !stale {
		return false, nil
	}
	if g.cfg.Introspect != nil {
		active, err := g.cfg.Introspect(ctx, token)
		if err == nil && !active {
			return true, invalidToken(bound, DescriptionRevoked)
		}
		if err == nil {
			return true, nil
		}
	}
	if slices.ContainsFunc(c.Scopes(), func(s string) bool { return slices.Contains(g.cfg.HighRiskScopes, s) }) {
		return true, unavailable("the revocation status cannot be confirmed for this scope now")
	}
	return true, nil
}
