package main

import (
	"github.com/spf13/cobra"
)

// receiverStatusPath is internal/server.ReceiverStatusPath; the CLI only needs the path.
const receiverStatusPath = "/api/v1/receiver/status"

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
			out, err := cf.call(cmd, "GET", receiverStatusPath, nil)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cf.register(status)
	cmd.AddCommand(status)
	return cmd
}
