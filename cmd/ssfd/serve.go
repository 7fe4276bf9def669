package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/internal/config"
	"github.com/ssfd/ssfd/internal/server"
)

func newServeCommand() *cobra.Command {
	// Defaults, then the environment: flags are declared with these values as defaults, so a flag given on the
	// command line wins over both.
	cfg := config.Default()
	envErr := cfg.FromEnv(os.Getenv)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the transmitter (and later the receiver and issuer) with embedded storage and NATS",
		Long: "Run ssfd: a bbolt file and, unless --nats-url is given, an in-process NATS server with JetStream,\n" +
			"both under --data-dir. Settings come from defaults, then SSFD_* environment variables, then flags.\n" +
			"SIGINT or SIGTERM shut it down gracefully.",
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if envErr != nil {
				return envErr
			}
			return cfg.Validate()
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			return server.Run(ctx, cfg, log, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for the bbolt file, keys and the embedded NATS store")
	f.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "host:port of the HTTP API")
	f.StringVar(&cfg.Issuer, "issuer", cfg.Issuer, "issuer URL of the transmitter (default http://<http-addr>)")
	f.BoolVar(&cfg.Dev, "dev", cfg.Dev, "development mode: plain http and loopback targets allowed, admin token in <data-dir>/admin.token")
	f.StringVar(&cfg.NATSURL, "nats-url", cfg.NATSURL, "connect to this NATS server instead of starting an embedded one")
	f.StringVar(&cfg.NATSListen, "nats-listen", cfg.NATSListen, "loopback host:port of the embedded NATS server")
	f.DurationVar(&cfg.PollTimeout, "poll-timeout", cfg.PollTimeout, "how long a long poll waits for a SET")
	f.DurationVar(&cfg.MinVerificationInterval, "min-verification-interval", cfg.MinVerificationInterval, "least time between two verification requests of a stream")
	f.DurationVar(&cfg.InactivityTimeout, "inactivity-timeout", cfg.InactivityTimeout, "inactivity_timeout of new streams; a stream without receiver activity for that long is paused (0: never)")
	f.StringSliceVar(&cfg.SigningAlgorithms, "signing-alg", cfg.SigningAlgorithms, "SET signing algorithms; the first is the default")
	return cmd
}
