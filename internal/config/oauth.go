package config

import (
	"net/url"
	"time"
)

// OAuth configures the built-in token issuer (spec/agent-auth.md §2). Its issuer identifier is the server's
// issuer URL; its endpoints live under /oauth/.
type OAuth struct {
	// Disabled turns the issuer off; the management API then accepts static tokens only.
	Disabled bool `yaml:"disabled"`
	// AccessTokenTTL is the life of autonomous and depth-1 access tokens (default 10m, at most 15m).
	AccessTokenTTL time.Duration `yaml:"access_token_ttl"`
	// DelegatedTokenTTL is the life of tokens at delegation depth 2 and deeper (default 5m).
	DelegatedTokenTTL time.Duration `yaml:"delegated_token_ttl"`
	// SessionTTL is the absolute life of a session node and its refresh tokens (default 8h).
	SessionTTL time.Duration `yaml:"session_ttl"`
	// MaxDelegationDepth is the depth cap of clients that do not set their own (default 3, at most 6).
	MaxDelegationDepth int `yaml:"max_delegation_depth"`
	// RequireDPoP refuses agent tokens without a DPoP proof (RFC 9449); SSF management tokens are exempt.
	RequireDPoP bool `yaml:"require_dpop"`
	// SigningAlgorithm signs access tokens: ES256 (default), EdDSA, RS256 or PS256. Its keys are separate from
	// the SET keys.
	SigningAlgorithm string `yaml:"signing_algorithm"`
}

// Revocation configures this process as a resource server's helper: the check API for gateways.
type Revocation struct {
	// CheckAudiences turns on POST /api/v1/check for tokens addressed to any of these audiences (the resources
	// behind the gateway that calls it); empty leaves it off.
	CheckAudiences []string `yaml:"check_audiences"`
	// HighRiskScopes are refused by the check API while the revocation feed is stale (fail closed).
	HighRiskScopes []string `yaml:"high_risk_scopes"`
	// CheckToken (or the file CheckTokenFile) is the secret the gateway sends in the X-SSFD-Check-Token header:
	// the check API reads the client's own Authorization header, so it cannot authenticate the gateway there.
	// Required with CheckAudiences.
	CheckToken     string `yaml:"check_token"`
	CheckTokenFile string `yaml:"check_token_file"`
}

// validateRevocation reports the bad fields of the revocation section.
func (c *Config) validateRevocation(bad func(field, format string, args ...any)) {
	r := c.Revocation
	if len(r.CheckAudiences) > 0 && c.OAuth.Disabled {
		bad("revocation.check_audiences", "the check API checks the built-in issuer's tokens; it needs oauth.disabled: false")
	}
	if len(r.CheckAudiences) > 0 && r.CheckToken == "" && r.CheckTokenFile == "" {
		bad("revocation.check_token", "is required with check_audiences (or check_token_file): the check API must know its gateway")
	}
	if r.CheckToken != "" && r.CheckTokenFile != "" {
		bad("revocation.check_token", "give check_token or check_token_file, not both")
	}
}

// Tracing configures the optional OpenTelemetry tracing (off by default).
type Tracing struct {
	// Enabled turns tracing on.
	Enabled bool `yaml:"enabled"`
	// Endpoint is the OTLP/HTTP traces URL of a collector, such as http://otel-collector:4318/v1/traces.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of events traced, 0 to 1 (default 1): an event is traced whole or not at all.
	SampleRatio float64 `yaml:"sample_ratio"`
}

// validateTracing reports the bad fields of the tracing section.
func (c *Config) validateTracing(bad func(field, format string, args ...any)) {
	t := c.Tracing
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		bad("tracing.sample_ratio", "%v must be between 0 and 1", t.SampleRatio)
	}
	if !t.Enabled {
		return
	}
	if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("tracing.endpoint", "%q must be the http(s) URL of an OTLP/HTTP collector, such as http://otel-collector:4318/v1/traces", t.Endpoint)
	}
}

// defaultOAuth returns the issuer defaults.
func defaultOAuth() OAuth {
	return OAuth{AccessTokenTTL: 10 * time.Minute, DelegatedTokenTTL: 5 * time.Minute, SessionTTL: 8 * time.Hour,
		MaxDelegationDepth: 3, SigningAlgorithm: "ES256"}
}

// validateOAuth reports every bad field of the issuer section.
func (c *Config) validateOAuth(bad func(field, format string, args ...any)) {
	o := c.OAuth
	if o.Disabled {
		return
	}
	if o.AccessTokenTTL < 10*time.Second || o.AccessTokenTTL > 15*time.Minute {
		bad("oauth.access_token_ttl", "%s must be between 10s and 15m (it bounds how long revocations are kept)", o.AccessTokenTTL)
	}
	if o.DelegatedTokenTTL < 10*time.Second || o.DelegatedTokenTTL > o.AccessTokenTTL {
		bad("oauth.delegated_token_ttl", "%s must be between 10s and access_token_ttl", o.DelegatedTokenTTL)
	}
	if o.SessionTTL < time.Minute || o.SessionTTL > 30*24*time.Hour {
		bad("oauth.session_ttl", "%s must be between 1m and 720h", o.SessionTTL)
	}
	if o.MaxDelegationDepth < 1 || o.MaxDelegationDepth > 6 {
		bad("oauth.max_delegation_depth", "%d must be between 1 and 6", o.MaxDelegationDepth)
	}
	switch o.SigningAlgorithm {
	case "ES256", "EdDSA", "RS256", "PS256":
	default:
		bad("oauth.signing_algorithm", "%q is not one of ES256, EdDSA, RS256, PS256", o.SigningAlgorithm)
	}
}
