package main

import (
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/internal/server"
)

func newDemoRSCommand() *cobra.Command {
	var cfg server.DemoRSConfig
	cmd := &cobra.Command{
		Use:   "demo-rs --audience URI",
		Short: "Run a demo resource server protected by the revocation middleware (GET /invoices)",
		Long: "The demo resource server accepts access tokens of the ssfd issuer addressed to --audience, follows the\n" +
			"revocation feed on NATS, and refuses revoked tokens with 401. It prints how long each revocation took\n" +
			"to arrive and to refuse a request, measured from the issuer's decision.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			rs, err := server.NewDemoRS(cfg, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			return rs.Run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.Addr, "addr", "127.0.0.1:9090", "where to listen")
	fl.StringVar(&cfg.Issuer, "issuer", envOr("SSFD_URL", "http://127.0.0.1:8080"), "the token issuer (ssfd serve's issuer URL)")
	fl.StringVar(&cfg.Audience, "audience", "https://demo.example.org", "this resource server's name: tokens must be issued for it")
	fl.StringVar(&cfg.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server carrying the revocation feed")
	return cmd
}
