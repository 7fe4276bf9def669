package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/ssfd/ssfd/schemas"
)

// Receiver configures the receiver role: the transmitters it subscribes to and where verified events go.
type Receiver struct {
	// ReplayWindow is how long (iss, jti) is remembered to refuse a replayed SET (spec/ssf.md VAL-12).
	ReplayWindow time.Duration `yaml:"replay_window"`
	// NATSSink republishes every verified event on NATS ssf.events.<event name>.
	NATSSink bool `yaml:"nats_sink"`
	// Webhooks receive every verified event as JSON.
	Webhooks []Webhook `yaml:"webhooks"`
	// Registrations are the transmitters to subscribe to.
	Registrations []Registration `yaml:"registrations"`
}

// Webhook is an HTTP endpoint that receives every verified event (POST, JSON), retried until it answers 2xx.
type Webhook struct {
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
	Timeout time.Duration     `yaml:"timeout"`
}

// Registration is one transmitter the receiver subscribes to.
type Registration struct {
	// Name names the push endpoint (/receiver/push/<name>) and the NATS consumer; letters, digits, - and _.
	Name string `yaml:"name"`
	// Issuer is the transmitter's issuer URL; its metadata must name exactly this issuer.
	Issuer string `yaml:"issuer"`
	// Token (or TokenFile) is a static bearer token for the transmitter's management and poll APIs.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// ClientCredentials gets tokens from an OAuth token endpoint instead.
	ClientCredentials *ClientCredentials `yaml:"client_credentials"`
	// Delivery is push, poll (the default) or nats.
	Delivery string `yaml:"delivery"`
	// PushURL is this receiver's push endpoint as the transmitter reaches it; default
	// http://<http_addr>/receiver/push/<name>. With store jetstream it is required: the load balancer's address,
	// since any replica may be pushed to.
	PushURL string `yaml:"push_url"`
	// PushAuthorization (or PushAuthorizationFile) is the Authorization value the transmitter must send with
	// each push; empty requires none.
	PushAuthorization     string `yaml:"push_authorization"`
	PushAuthorizationFile string `yaml:"push_authorization_file"`
	// Events are the event types to request: short names (session-revoked) or URIs; empty asks for all.
	Events []string `yaml:"events"`
	// Audience lists aud values that name this receiver; empty accepts the stream's aud.
	Audience []string `yaml:"audience"`
	// StreamID adopts an existing stream.
	StreamID string `yaml:"stream_id"`
	// SigningAlg asks an ssfd transmitter for this algorithm.
	SigningAlg string `yaml:"signing_alg"`
	// Algorithms is the allow-list of SET signature algorithms; empty allows RS256, PS256, ES256, EdDSA.
	Algorithms []string `yaml:"algorithms"`
	// VerifyInterval is how often verification is requested again; 0 means hourly.
	VerifyInterval time.Duration `yaml:"verify_interval"`
	// NATSURL is where a NATS-delivered stream is read; empty uses this process's NATS.
	NATSURL string `yaml:"nats_url"`
}

// ClientCredentials is an OAuth 2.0 client credentials grant (RFC 6749 §4.4).
type ClientCredentials struct {
	TokenURL         string   `yaml:"token_url"`
	ClientID         string   `yaml:"client_id"`
	ClientSecret     string   `yaml:"client_secret"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	Scopes           []string `yaml:"scopes"`
}

var registrationName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// validateReceiver adds the receiver section's problems through bad.
func (c *Config) validateReceiver(bad func(field, format string, args ...any)) {
	r := c.Receiver
	if r.ReplayWindow < time.Minute {
		bad("receiver.replay_window", "%s must be at least 1m (7 days is recommended)", r.ReplayWindow)
	}
	for i, w := range r.Webhooks {
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(fmt.Sprintf("receiver.webhooks[%d].url", i), "%q is not an http(s) URL", w.URL)
		}
	}
	names := map[string]bool{}
	for i, g := range r.Registrations {
		field := func(f string) string { return fmt.Sprintf("receiver.registrations[%d].%s", i, f) }
		if !registrationName.MatchString(g.Name) {
			bad(field("name"), "%q must be 1 to 64 letters, digits, - or _", g.Name)
		}
		if names[g.Name] {
			bad(field("name"), "%q is used twice", g.Name)
		}
		names[g.Name] = true
		if u, err := url.Parse(g.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" {
			bad(field("issuer"), "%q must be an http(s) URL without query or fragment", g.Issuer)
		} else if u.Scheme == "http" && !c.Dev {
			bad(field("issuer"), "%q must be https unless dev: true (SSF 1.0 requires TLS)", g.Issuer)
		}
		if g.PushURL != "" {
			if u, err := url.Parse(g.PushURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				bad(field("push_url"), "%q is not an http(s) URL", g.PushURL)
			}
		}
		for _, e := range g.Events {
			if _, err := schemas.LookupEventType(e); err != nil {
				bad(field("events"), "%q is neither a known event name (session-revoked, …) nor an event type URI", e)
			}
		}
		creds := 0
		for _, set := range []bool{g.Token != "", g.TokenFile != "", g.ClientCredentials != nil} {
			if set {
				creds++
			}
		}
		if creds != 1 {
			bad(field("token"), "needs exactly one of token, token_file and client_credentials")
		}
		if cc := g.ClientCredentials; cc != nil {
			if cc.TokenURL == "" || cc.ClientID == "" || (cc.ClientSecret == "") == (cc.ClientSecretFile == "") {
				bad(field("client_credentials"), "needs token_url, client_id and exactly one of client_secret and client_secret_file")
			}
		}
		if !slices.Contains([]string{"", "poll", "push", "nats"}, g.Delivery) {
			bad(field("delivery"), "%q must be push, poll or nats", g.Delivery)
		}
		if g.PushAuthorization != "" && g.PushAuthorizationFile != "" {
			bad(field("push_authorization"), "set push_authorization or push_authorization_file, not both")
		}
		for _, a := range g.Algorithms {
			if !slices.Contains([]string{"RS256", "PS256", "ES256", "EdDSA"}, a) {
				bad(field("algorithms"), "%q is not one of RS256, PS256, ES256, EdDSA", a)
			}
		}
		if g.VerifyInterval < 0 {
			bad(field("verify_interval"), "must not be negative")
		}
	}
}
