package config_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ssfd/ssfd/internal/config"
)

func TestDefaultsAreValid(t *testing.T) {
	cfg := config.Default()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.IssuerURL() != "http://127.0.0.1:8080" {
		t.Fatalf("issuer = %s", cfg.IssuerURL())
	}
}

func TestValidateReportsEveryProblemByField(t *testing.T) {
	cfg := config.Default()
	cfg.HTTPAddr = "nope"
	cfg.Issuer = "https://tx.example.net/?q=1"
	cfg.NATSListen = "10.0.0.1:4222"
	cfg.SigningAlgorithms = []string{"HS256"}
	cfg.PollTimeout = time.Hour
	cfg.Tokens = []config.Token{{ClientID: ""}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, field := range []string{"http_addr", "issuer", "nats_listen", "signing_algorithms", "poll_timeout", "tokens[0]", "tokens[0].client_id"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("no problem reported for %s in %v", field, err)
		}
	}
}

func TestPlainHTTPIssuerNeedsDev(t *testing.T) {
	cfg := config.Default()
	cfg.Issuer = "http://tx.example.net"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("err = %v", err)
	}
	cfg.Dev = true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestEnvironmentOverridesDefaults(t *testing.T) {
	env := map[string]string{"SSFD_DATA_DIR": "/var/lib/ssfd", "SSFD_POLL_TIMEOUT": "10s", "SSFD_DEV": "true"}
	cfg := config.Default()
	if err := cfg.FromEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/ssfd" || cfg.PollTimeout != 10*time.Second || !cfg.Dev {
		t.Fatalf("cfg = %+v", cfg)
	}
	env = map[string]string{"SSFD_POLL_TIMEOUT": "soon", "SSFD_DEV": "maybe"}
	err := cfg.FromEnv(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "SSFD_POLL_TIMEOUT") || !strings.Contains(err.Error(), "SSFD_DEV") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadReadsYAMLAndRefusesUnknownKeys(t *testing.T) {
	cfg := config.Default()
	err := cfg.Load([]byte(`
data_dir: /var/lib/ssfd
issuer: https://ssf.example.net
poll_timeout: 10s
tokens:
  - client_id: receiver-a
    file: /run/secrets/rx-a
    scopes: [ssf.read, ssf.manage]
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/ssfd" || cfg.PollTimeout != 10*time.Second || cfg.HTTPAddr != "127.0.0.1:8080" ||
		len(cfg.Tokens) != 1 || cfg.Tokens[0].Scopes[1] != "ssf.manage" {
		t.Fatalf("cfg = %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Load([]byte("data_dri: /tmp\n")); err == nil || !strings.Contains(err.Error(), "data_dri") {
		t.Fatalf("a misspelt key must be refused: %v", err)
	}
}

func TestExampleIsValidAndNamesEveryKey(t *testing.T) {
	cfg := config.Default()
	if err := cfg.Load(config.Example); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the example does not pass check: %v", err)
	}
	def := config.Default()
	if fmt.Sprint(cfg) != fmt.Sprint(def) {
		t.Fatalf("the example's values differ from the defaults:\n%+v\n%+v", cfg, def)
	}
	for i := range reflect.TypeFor[config.Config]().NumField() {
		key := strings.Split(reflect.TypeFor[config.Config]().Field(i).Tag.Get("yaml"), ",")[0]
		if key == "-" { // set by a subcommand, not by the file
			continue
		}
		if !strings.Contains(string(config.Example), "\n"+key+":") {
			t.Errorf("the example does not show %s", key)
		}
	}
}

func TestReceiverRegistrationsAreCheckedByField(t *testing.T) {
	cfg := config.Default()
	if err := cfg.Load([]byte(`
receiver:
  replay_window: 10s
  webhooks: [{url: "not a url"}]
  registrations:
    - {name: "bad name!", issuer: "ftp://x", delivery: carrier-pigeon, token: a, token_file: b, events: [no-such-event]}
    - {name: plain, issuer: "http://tx.example.net", token: t, algorithms: [HS256], push_url: "mailto:x"}
    - {name: plain, issuer: "https://tx.example.net", client_credentials: {token_url: "https://idp/token"}}
`)); err != nil {
		t.Fatal(err)
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("a bad receiver section passed")
	}
	for _, want := range []string{
		"receiver.replay_window", "receiver.webhooks[0].url",
		"receiver.registrations[0].name", "receiver.registrations[0].issuer", "receiver.registrations[0].delivery",
		"receiver.registrations[0].token", "receiver.registrations[0].events",
		"receiver.registrations[1].issuer: \"http://tx.example.net\" must be https unless dev",
		"receiver.registrations[1].algorithms", "receiver.registrations[1].push_url",
		"receiver.registrations[2].name: \"plain\" is used twice", "receiver.registrations[2].client_credentials",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not report %s:\n%v", want, err)
		}
	}
	cfg.Dev = true
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "must be https") {
		t.Fatalf("with dev an http issuer is fine: %v", err)
	}
}

// TestJetStreamStoreNeedsANATSCluster: the jetstream store is refused without nats_url, with a replica count
// JetStream does not take or with a prefix that cannot name a stream; the environment sets all four keys.
func TestJetStreamStoreNeedsANATSCluster(t *testing.T) {
	c := config.Default()
	env := map[string]string{"SSFD_STORE": "jetstream", "SSFD_NATS_REPLICAS": "7", "SSFD_NATS_PREFIX": "bad.prefix",
		"SSFD_REPLICA_ID": "r1"}
	if err := c.FromEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Store != config.StoreJetStream || c.NATSReplicas != 7 || c.NATSPrefix != "bad.prefix" || c.ReplicaID != "r1" {
		t.Fatalf("environment not applied: %+v", c)
	}
	err := c.Validate()
	for _, want := range []string{"store: jetstream needs nats_url", "nats_replicas: 7", "nats_prefix: \"bad.prefix\"",
		"issuer: is required with store jetstream"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	c.NATSURL, c.NATSReplicas, c.NATSPrefix, c.Issuer = "nats://a:4222,nats://b:4222", 3, "SSFD", "https://ssf.example.net"
	if err := c.Validate(); err != nil {
		t.Fatalf("a valid cluster configuration was refused: %v", err)
	}
	c.Store = "etcd"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `store: "etcd" is not bolt or jetstream`) {
		t.Fatalf("Validate() = %v, want the unknown store named", err)
	}
}
