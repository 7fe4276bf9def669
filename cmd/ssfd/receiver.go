package main

import (
	"cmp"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/internal/server"
	"github.com/ssfd/ssfd/schemas"
)

func newReceiverCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "receiver",
		Short: "Inspect the receiver role of a running ssfd",
	}
	var cf clientFlags
	status := &cobra.Command{
		Use:   "status",
		Short: "Show each receiver registration: stream, status, last verification, last event, counts by outcome",
		Long: "Print GET /api/v1/receiver/status of the ssfd at --url (a token with ssf.read): per registration the\n" +
			"stream ID and status, when verification was last asked for and answered, the last event, the SETs\n" +
			"accepted, replayed and refused by RFC 8935 code, the last problem; and the backlog of SETs accepted\n" +
			"but not yet handled.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := cf.call(cmd, "GET", server.ReceiverStatusPath, nil)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cf.register(status)
	cmd.AddCommand(status, newReceiverEventsCommand())
	return cmd
}

func newReceiverEventsCommand() *cobra.Command {
	var name, url string
	cmd := &cobra.Command{
		Use:   "events [--type session-revoked]",
		Short: "Print the events the receiver verified, as republished on NATS ssf.events.<event name>",
		Long: "Follow the JetStream stream SSF_EVENTS from its start and print each event message (JSON: the\n" +
			"registration, iss, jti, txn, iat, event_type, event and sub_id) as it arrives. Services read the same\n" +
			"subjects with a durable consumer of their own.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name != "" {
				t, err := schemas.LookupEventType(name)
				if err != nil {
					return err
				}
				name = t.Name()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(cmd.ErrOrStderr(), "following %s%s on %s\n", natsbus.SubjectEventsPrefix, cmp.Or(name, ">"), url)
			return natsbus.FollowEvents(ctx, url, name, func(event []byte) {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", event)
			})
		},
	}
	cmd.Flags().StringVar(&name, "type", "", "event type, short name or URI (default: every type)")
	cmd.Flags().StringVar(&url, "nats-url", envOr("SSFD_NATS_URL", "nats://127.0.0.1:4222"), "NATS server (env SSFD_NATS_URL)")
	return cmd
}
