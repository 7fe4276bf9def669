package main

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/schemas"
)

func newPollCommand() *cobra.Command {
	var cf clientFlags
	var streamID string
	var ack, wait, follow bool
	var maxEvents int
	cmd := &cobra.Command{
		Use:   "poll --stream STREAM_ID [--ack] [--wait] [--follow]",
		Short: "Poll a stream for SETs (RFC 8936) and print their claims",
		Long: "Poll a stream's poll endpoint once and print each SET's jti and claims (unverified; use\n" +
			"`ssfd set verify` to verify one). --ack acknowledges what was printed, --wait long-polls until a SET\n" +
			"arrives, --follow keeps polling, acknowledging each batch in the next request.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd.Context())
			if err != nil {
				return err
			}
			cfg, err := c.GetStream(cmd.Context(), streamID)
			if err != nil {
				return err
			}
			if cfg.Delivery.Method != schemas.DeliveryPoll {
				return fmt.Errorf("stream %s is delivered by %s, not poll", streamID, cfg.Delivery.Method)
			}
			var pending []string
			for {
				req := schemas.PollRequest{ReturnImmediately: !wait && !follow, Ack: pending}
				if maxEvents > 0 {
					req.MaxEvents = &maxEvents
				}
				resp, err := c.Poll(cmd.Context(), cfg.Delivery.EndpointURL, req)
				if err != nil {
					return err
				}
				pending = printSETs(cmd, resp)
				if !follow {
					break
				}
			}
			if ack && len(pending) > 0 {
				zero := 0
				if _, err := c.Poll(cmd.Context(), cfg.Delivery.EndpointURL, schemas.PollRequest{MaxEvents: &zero, ReturnImmediately: true, Ack: pending}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "acknowledged %d SET(s)\n", len(pending))
			}
			return nil
		},
	}
	cf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&streamID, "stream", "", "stream ID")
	fl.BoolVar(&ack, "ack", false, "acknowledge the SETs received")
	fl.BoolVar(&wait, "wait", false, "long-poll: wait until a SET arrives or the transmitter's timeout passes")
	fl.BoolVar(&follow, "follow", false, "keep polling and acknowledging until interrupted")
	fl.IntVar(&maxEvents, "max", 0, "the most SETs to return (0: the transmitter's limit)")
	_ = cmd.MarkFlagRequired("stream")
	return cmd
}

// printSETs prints each SET's jti and claims, oldest jti order being unknown, sorted by jti; it returns the jtis.
func printSETs(cmd *cobra.Command, resp *schemas.PollResponse) []string {
	jtis := make([]string, 0, len(resp.Sets))
	for jti := range resp.Sets {
		jtis = append(jtis, jti)
	}
	sort.Strings(jtis)
	for _, jti := range jtis {
		_, payload, err := keys.Decode(resp.Sets[jti])
		out := map[string]any{"jti": jti, "set": resp.Sets[jti]}
		if err != nil {
			out["error"] = err.Error()
		} else {
			out["claims"] = compactOrQuote(payload)
		}
		_ = printJSON(cmd, out)
	}
	if len(jtis) == 0 {
		fmt.Fprintln(cmd.ErrOrStderr(), "no SETs waiting")
	} else if resp.MoreAvailable {
		fmt.Fprintln(cmd.ErrOrStderr(), "more SETs are waiting")
	}
	return jtis
}
