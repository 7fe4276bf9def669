package main

import (
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/internal/server"
)

func newServeCommand() *cobra.Command {
	return newRunCommand("serve", "Run the transmitter (and the receiver, when configured) with embedded storage and NATS",
		"Run ssfd: a bbolt file and, unless --nats-url is given, an in-process NATS server with JetStream,\n"+
			"both under --data-dir. Settings come from defaults, then --config FILE (YAML), then SSFD_*\n"+
			"environment variables, then flags. The receiver role runs beside the transmitter when the\n"+
			"configuration lists receiver.registrations. SIGINT or SIGTERM shut it down gracefully.", false)
}

func newReceiveCommand() *cobra.Command {
	return newRunCommand("receive", "Run the receiver alone: subscribe to the configured transmitters and act on their SETs",
		"Run the receiver role only, with the same storage, NATS and settings as serve but without the\n"+
			"transmitter's API. The transmitters to subscribe to are the receiver.registrations of --config FILE\n"+
			"(see `ssfd config example`); verified events go to NATS ssf.events.<event name> and to the\n"+
			"configured webhooks. `ssfd receiver status` shows each registration.", true)
}

// newRunCommand builds serve and receive, which differ only in the roles they run.
func newRunCommand(use, short, long string, receiverOnly bool) *cobra.Command {
	var configFile string
	flags := config.Default() // what the flags hold; only flags given on the command line are applied
	var cfg config.Config
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			cfg = config.Default()
			if configFile != "" {
				if err := cfg.LoadFile(configFile); err != nil {
					return err
				}
			}
			if err := cfg.FromEnv(os.Getenv); err != nil {
				return err
			}
			apply := map[string]func(){
				"data-dir":                  func() { cfg.DataDir = flags.DataDir },
				"http-addr":                 func() { cfg.HTTPAddr = flags.HTTPAddr },
				"issuer":                    func() { cfg.Issuer = flags.Issuer },
				"dev":                       func() { cfg.Dev = flags.Dev },
				"nats-url":                  func() { cfg.NATSURL = flags.NATSURL },
				"nats-listen":               func() { cfg.NATSListen = flags.NATSListen },
				"store":                     func() { cfg.Store = flags.Store },
				"nats-replicas":             func() { cfg.NATSReplicas = flags.NATSReplicas },
				"nats-prefix":               func() { cfg.NATSPrefix = flags.NATSPrefix },
				"replica-id":                func() { cfg.ReplicaID = flags.ReplicaID },
				"poll-timeout":              func() { cfg.PollTimeout = flags.PollTimeout },
				"min-verification-interval": func() { cfg.MinVerificationInterval = flags.MinVerificationInterval },
				"inactivity-timeout":        func() { cfg.InactivityTimeout = flags.InactivityTimeout },
				"signing-alg":               func() { cfg.SigningAlgorithms = flags.SigningAlgorithms },
				"log-format":                func() { cfg.LogFormat = flags.LogFormat },
				"log-level":                 func() { cfg.LogLevel = flags.LogLevel },
			}
			for name, set := range apply {
				if cmd.Flags().Changed(name) {
					set()
				}
			}
			cfg.ReceiverOnly = receiverOnly
			if receiverOnly && len(cfg.Receiver.Registrations) == 0 {
				return errors.New("receive needs at least one transmitter in receiver.registrations of --config FILE")
			}
			return cfg.Validate()
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg.Version = version
			return server.Run(ctx, cfg, cfg.Logger(cmd.ErrOrStderr()), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML configuration file")
	f.StringVar(&flags.DataDir, "data-dir", flags.DataDir, "directory for the bbolt file, keys and the embedded NATS store (env SSFD_DATA_DIR)")
	f.StringVar(&flags.HTTPAddr, "http-addr", flags.HTTPAddr, "host:port of the HTTP API (env SSFD_HTTP_ADDR)")
	f.StringVar(&flags.Issuer, "issuer", flags.Issuer, "issuer URL of the transmitter, default http://<http-addr> (env SSFD_ISSUER)")
	f.BoolVar(&flags.Dev, "dev", flags.Dev, "development mode: plain http allowed, admin token in <data-dir>/admin.token (env SSFD_DEV)")
	f.StringVar(&flags.NATSURL, "nats-url", flags.NATSURL, "connect to this NATS server instead of starting an embedded one (env SSFD_NATS_URL)")
	f.StringVar(&flags.NATSListen, "nats-listen", flags.NATSListen, "loopback host:port of the embedded NATS server (env SSFD_NATS_LISTEN)")
	f.StringVar(&flags.Store, "store", flags.Store, "bolt (one node, the file in --data-dir) or jetstream (replicas sharing the NATS cluster at --nats-url) (env SSFD_STORE)")
	f.IntVar(&flags.NATSReplicas, "nats-replicas", flags.NATSReplicas, "replica count of ssfd's JetStream streams and buckets with --store jetstream; 0 means 3 (env SSFD_NATS_REPLICAS)")
	f.StringVar(&flags.NATSPrefix, "nats-prefix", flags.NATSPrefix, "prefix of ssfd's JetStream streams and buckets, default SSFD (env SSFD_NATS_PREFIX)")
	f.StringVar(&flags.ReplicaID, "replica-id", flags.ReplicaID, "name of this replica in work leases and logs, default host name and a random suffix (env SSFD_REPLICA_ID)")
	f.DurationVar(&flags.PollTimeout, "poll-timeout", flags.PollTimeout, "how long a long poll waits for a SET (env SSFD_POLL_TIMEOUT)")
	f.DurationVar(&flags.MinVerificationInterval, "min-verification-interval", flags.MinVerificationInterval, "least time between two verification requests of a stream (env SSFD_MIN_VERIFICATION_INTERVAL)")
	f.DurationVar(&flags.InactivityTimeout, "inactivity-timeout", flags.InactivityTimeout, "inactivity_timeout of new streams; an inactive stream is paused (0: never)")
	f.StringSliceVar(&flags.SigningAlgorithms, "signing-alg", flags.SigningAlgorithms, "SET signing algorithms; the first is the default")
	f.StringVar(&flags.LogFormat, "log-format", flags.LogFormat, "log format: text or json (env SSFD_LOG_FORMAT)")
	f.StringVar(&flags.LogLevel, "log-level", flags.LogLevel, "log level: debug, info, warn or error (env SSFD_LOG_LEVEL)")
	return cmd
}
