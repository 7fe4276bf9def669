package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is the configuration of one ssfd process. Fill it with Default, then the environment (FromEnv), then
// flags, and check it with Validate.
type Config struct {
	// DataDir holds the bbolt file, the signing keys, the embedded NATS store and, with Dev, admin.token.
	DataDir string `yaml:"data_dir"`
	// HTTPAddr is where the HTTP API listens.
	HTTPAddr string `yaml:"http_addr"`
	// Issuer is the transmitter's issuer URL; default http://<HTTPAddr>.
	Issuer string `yaml:"issuer"`
	// Dev allows plain http and loopback targets and writes an admin token to <DataDir>/admin.token.
	Dev bool `yaml:"dev"`
	// NATSURL points at an existing NATS server or cluster; empty starts an embedded server.
	NATSURL string `yaml:"nats_url"`
	// NATSListen is the loopback address of the embedded NATS server.
	NATSListen string `yaml:"nats_listen"`
	// Store is where streams, queues, issuer state and the receiver inbox live: "bolt" (the bbolt file in
	// DataDir, one node) or "jetstream" (replicated JetStream streams and KV buckets on the NATS cluster at
	// NATSURL, shared by every replica; docs/cluster.md).
	Store string `yaml:"store"`
	// NATSReplicas is the replica count of every stream and bucket ssfd creates with the jetstream store (3 on a
	// three-node NATS cluster); 0 means 3.
	NATSReplicas int `yaml:"nats_replicas"`
	// NATSPrefix starts the name of every stream and bucket of the jetstream store, so that deployments can share
	// a NATS cluster; default SSFD.
	NATSPrefix string `yaml:"nats_prefix"`
	// ReplicaID names this replica in work leases and logs; default the host name and a random suffix.
	ReplicaID string `yaml:"replica_id"`
	// Tokens are static bearer tokens for the management, poll and intake APIs.
	Tokens []Token `yaml:"tokens"`
	// SigningAlgorithms are the algorithms SETs may be signed with; the first is the default (RS256 for interop).
	SigningAlgorithms []string `yaml:"signing_algorithms"`
	// MinVerificationInterval is the stream configuration's min_verification_interval.
	MinVerificationInterval time.Duration `yaml:"min_verification_interval"`
	// InactivityTimeout is the inactivity_timeout of new streams; 0 means none.
	InactivityTimeout time.Duration `yaml:"inactivity_timeout"`
	// PollTimeout is how long a long poll waits.
	PollTimeout time.Duration `yaml:"poll_timeout"`
	// PushAllowedNetworks are CIDR prefixes push delivery may reach besides public unicast addresses (SSRF
	// guard); --dev allows every target.
	PushAllowedNetworks []string `yaml:"push_allowed_networks"`
	// PushTimeout bounds each push request.
	PushTimeout time.Duration `yaml:"push_timeout"`
	// PushRetryMin and PushRetryMax bound the exponential backoff of push retries.
	PushRetryMin time.Duration `yaml:"push_retry_min"`
	PushRetryMax time.Duration `yaml:"push_retry_max"`
	// PushMaxAge is how long a SET is retried before it becomes a dead letter.
	PushMaxAge time.Duration `yaml:"push_max_age"`
	// MetricsPerStream is how many streams get /metrics series of their own (queue depth and oldest SET age,
	// labelled by stream_id); 0 keeps only totals. Bounded so that many streams cannot blow up cardinality.
	MetricsPerStream int `yaml:"metrics_per_stream"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format"`
	// LogLevel is debug, info, warn or error. Requests are logged at debug; tokens, secrets and whole SETs never
	// are.
	LogLevel string `yaml:"log_level"`
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Receiver configures the receiver role; it runs when it has registrations.
	Receiver Receiver `yaml:"receiver"`
	// OAuth configures the built-in token issuer.
	OAuth OAuth `yaml:"oauth"`
	// Revocation configures the check API of resource servers' gateways.
	Revocation Revocation `yaml:"revocation"`
	// Tracing configures OpenTelemetry tracing.
	Tracing Tracing `yaml:"tracing"`
	// Version is the binary's version, for telemetry; set by the command, not configurable.
	Version string `yaml:"-"`
	// ReceiverOnly runs the receiver role alone, without the transmitter's endpoints (ssfd receive).
	ReceiverOnly bool `yaml:"-"`
}

// Token is a static bearer token: its value (or a file holding it), the client it stands for, and its scopes.
type Token struct {
	Value    string   `yaml:"value"`
	File     string   `yaml:"file"`
	ClientID string   `yaml:"client_id"`
	Scopes   []string `yaml:"scopes"`
}

// The stores Config.Store names.
const (
	StoreBolt      = "bolt"
	StoreJetStream = "jetstream"
)

// prefixShape is storage/jetstream's rule for a prefix, checked here too so that `ssfd config check` reports it
// with every other bad field (the configuration does not import the stores).
var prefixShape = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Default returns the defaults: data in ./data, HTTP on 127.0.0.1:8080, embedded NATS on 127.0.0.1:4222.
func Default() Config {
	return Config{
		DataDir:                 "./data",
		HTTPAddr:                "127.0.0.1:8080",
		NATSListen:              "127.0.0.1:4222",
		Store:                   StoreBolt,
		SigningAlgorithms:       []string{"RS256", "ES256", "EdDSA"},
		MinVerificationInterval: 15 * time.Second,
		PollTimeout:             25 * time.Second,
		ShutdownTimeout:         10 * time.Second,
		LogFormat:               "text",
		LogLevel:                "info",
		PushTimeout:             10 * time.Second,
		PushMaxAge:              24 * time.Hour,
		PushRetryMin:            time.Second,
		PushRetryMax:            5 * time.Minute,
		Receiver:                Receiver{ReplayWindow: 7 * 24 * time.Hour, NATSSink: true},
		OAuth:                   defaultOAuth(),
		Tracing:                 Tracing{SampleRatio: 1},
	}
}

// FromEnv overrides fields from SSFD_* variables read through getenv (os.Getenv in the process): SSFD_DATA_DIR,
// SSFD_HTTP_ADDR, SSFD_ISSUER, SSFD_DEV, SSFD_NATS_URL, SSFD_NATS_LISTEN, SSFD_STORE, SSFD_NATS_REPLICAS,
// SSFD_NATS_PREFIX, SSFD_REPLICA_ID, SSFD_POLL_TIMEOUT,
// SSFD_MIN_VERIFICATION_INTERVAL, SSFD_INACTIVITY_TIMEOUT, SSFD_LOG_FORMAT, SSFD_LOG_LEVEL. It reports every value it cannot read.
func (c *Config) FromEnv(getenv func(string) string) error {
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	dur := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a duration such as 15s", name, v))
				return
			}
			*dst = d
		}
	}
	str("SSFD_DATA_DIR", &c.DataDir)
	str("SSFD_HTTP_ADDR", &c.HTTPAddr)
	str("SSFD_ISSUER", &c.Issuer)
	str("SSFD_NATS_URL", &c.NATSURL)
	str("SSFD_NATS_LISTEN", &c.NATSListen)
	str("SSFD_STORE", &c.Store)
	str("SSFD_NATS_PREFIX", &c.NATSPrefix)
	str("SSFD_REPLICA_ID", &c.ReplicaID)
	if v := getenv("SSFD_NATS_REPLICAS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("SSFD_NATS_REPLICAS: %q is not a number", v))
		}
		c.NATSReplicas = n
	}
	dur("SSFD_POLL_TIMEOUT", &c.PollTimeout)
	dur("SSFD_MIN_VERIFICATION_INTERVAL", &c.MinVerificationInterval)
	dur("SSFD_INACTIVITY_TIMEOUT", &c.InactivityTimeout)
	str("SSFD_LOG_FORMAT", &c.LogFormat)
	str("SSFD_LOG_LEVEL", &c.LogLevel)
	if v := getenv("SSFD_DEV"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("SSFD_DEV: %q is not a boolean", v))
		}
		c.Dev = b
	}
	return errors.Join(errs...)
}

// Validate checks every field and reports all problems at once, each by its field name.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		bad("data_dir", "is required")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("http_addr", "%q is not host:port", c.HTTPAddr)
	}
	if c.Issuer != "" {
		u, err := url.Parse(c.Issuer)
		switch {
		case err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
			bad("issuer", "%q must be an absolute URL without query or fragment (SSF 1.0 §7.1)", c.Issuer)
		case u.Scheme != "https" && !c.Dev:
			bad("issuer", "%q must use https; plain http is allowed only with --dev", c.Issuer)
		}
	}
	switch c.Store {
	case StoreBolt, "":
	case StoreJetStream:
		if c.NATSURL == "" {
			bad("store", "jetstream needs nats_url (--nats-url): the NATS cluster every replica shares")
		}
		if c.Issuer == "" {
			bad("issuer", "is required with store jetstream: every replica signs with the same iss (the load balancer's URL)")
		}
		if c.NATSReplicas < 0 || c.NATSReplicas > 5 {
			bad("nats_replicas", "%d is not a JetStream replica count (1 to 5)", c.NATSReplicas)
		}
		if c.NATSPrefix != "" && !prefixShape.MatchString(c.NATSPrefix) {
			bad("nats_prefix", "%q must be 1 to 32 letters, digits, '-' or '_'", c.NATSPrefix)
		}
	default:
		bad("store", "%q is not bolt or jetstream", c.Store)
	}
	if c.NATSURL == "" {
		if host, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			bad("nats_listen", "%q is not host:port", c.NATSListen)
		} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			bad("nats_listen", "the embedded NATS server listens on loopback only, not %q", host)
		}
	}
	if len(c.SigningAlgorithms) == 0 {
		bad("signing_algorithms", "needs at least one algorithm")
	}
	for _, a := range c.SigningAlgorithms {
		if !slices.Contains([]string{"RS256", "PS256", "ES256", "EdDSA"}, a) {
			bad("signing_algorithms", "%q is not one of RS256, PS256, ES256, EdDSA", a)
		}
	}
	if c.PollTimeout < time.Second || c.PollTimeout > 5*time.Minute {
		bad("poll_timeout", "%s must be between 1s and 5m", c.PollTimeout)
	}
	if c.InactivityTimeout != 0 && c.InactivityTimeout < time.Second {
		bad("inactivity_timeout", "%s must be 0 (none) or at least 1s", c.InactivityTimeout)
	}
	if c.MinVerificationInterval < 0 {
		bad("min_verification_interval", "must not be negative")
	}
	for i, n := range c.PushAllowedNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			bad(fmt.Sprintf("push_allowed_networks[%d]", i), "%q is not a CIDR prefix such as 10.0.0.0/8", n)
		}
	}
	if c.PushTimeout < time.Second || c.PushTimeout > 5*time.Minute {
		bad("push_timeout", "%s must be between 1s and 5m", c.PushTimeout)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "%q must be text or json", c.LogFormat)
	}
	if _, err := c.Level(); err != nil {
		bad("log_level", "%q must be debug, info, warn or error", c.LogLevel)
	}
	if c.MetricsPerStream < 0 || c.MetricsPerStream > 10_000 {
		bad("metrics_per_stream", "%d must be between 0 and 10000", c.MetricsPerStream)
	}
	if c.PushRetryMin <= 0 || c.PushRetryMax < c.PushRetryMin {
		bad("push_retry_min", "%s must be positive and not above push_retry_max %s", c.PushRetryMin, c.PushRetryMax)
	}
	if c.PushMaxAge < time.Minute {
		bad("push_max_age", "%s must be at least 1m", c.PushMaxAge)
	}
	for i, t := range c.Tokens {
		if (t.Value == "") == (t.File == "") {
			bad(fmt.Sprintf("tokens[%d]", i), "needs exactly one of value and file")
		}
		if t.ClientID == "" {
			bad(fmt.Sprintf("tokens[%d].client_id", i), "is required")
		}
	}
	c.validateReceiver(bad)
	c.validateOAuth(bad)
	c.validateRevocation(bad)
	c.validateTracing(bad)
	return errors.Join(errs...)
}

// IssuerURL returns the issuer, defaulting to http://<HTTPAddr>.
func (c *Config) IssuerURL() string {
	if c.Issuer != "" {
		return strings.TrimSuffix(c.Issuer, "/")
	}
	return "http://" + c.HTTPAddr
}

// TokenValue returns a token's value, reading its file when it has one.
func (t Token) TokenValue() (string, error) {
	v, err := ValueOrFile(t.Value, t.File)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	return v, nil
}

// ValueOrFile returns a secret given in the configuration either as value or, when file is set, as the contents
// of file without surrounding white space (a trailing newline, typically).
func ValueOrFile(value, file string) (string, error) {
	if file == "" {
		return value, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

// Level returns LogLevel as a slog level.
func (c *Config) Level() (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(c.LogLevel))
	return l, err
}

// Logger returns the process logger the configuration asks for, writing to w.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	level, _ := c.Level()
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
