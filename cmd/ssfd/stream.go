package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/receiver"
	"github.com/ssfd/ssfd/schemas"
)

func newStreamCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stream",
		Short: "Manage streams on any SSF 1.0 transmitter (SSF 1.0 §8)",
	}
	cmd.AddCommand(newStreamCreateCommand(), newStreamListCommand(), newStreamGetCommand(),
		newStreamUpdateCommand(), newStreamReplaceCommand(), newStreamDeleteCommand(), newStreamStatusCommand(),
		newStreamVerifyCommand(), newStreamSubjectCommand(true), newStreamSubjectCommand(false))
	return cmd
}

// eventTypes turns short names ("session-revoked") and URIs into event types; "all" means every CAEP and RISC
// type.
func eventTypes(names []string) ([]schemas.EventType, error) {
	var out []schemas.EventType
	for _, n := range names {
		if n == "all" {
			for _, t := range schemas.KnownEventTypes() {
				if t != schemas.EventVerification && t != schemas.EventStreamUpdated {
					out = append(out, t)
				}
			}
			continue
		}
		t, err := schemas.LookupEventType(n)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// streamRequestFlags are the receiver-supplied members of create and replace.
type streamRequestFlags struct {
	delivery, endpoint, authHeader, description, alg string
	events                                           []string
}

func (f *streamRequestFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.delivery, "delivery", "poll", "delivery method: poll, push, nats, or a method URI")
	fl.StringVar(&f.endpoint, "endpoint", "", "push: the receiver's endpoint_url")
	fl.StringVar(&f.authHeader, "auth-header", "", "push: the Authorization value the transmitter sends")
	fl.StringSliceVar(&f.events, "events", []string{"all"}, "event types to request: short names, URIs, or all")
	fl.StringVar(&f.description, "description", "", "text for humans")
	fl.StringVar(&f.alg, "alg", "", "signing algorithm to ask an ssfd transmitter for (RS256 by default)")
}

func deliveryMethod(name string) schemas.DeliveryMethod {
	switch name {
	case "poll":
		return schemas.DeliveryPoll
	case "push":
		return schemas.DeliveryPush
	case "nats":
		return schemas.DeliveryNATS
	}
	return schemas.DeliveryMethod(name)
}

func (f *streamRequestFlags) request() (receiver.StreamRequest, error) {
	events, err := eventTypes(f.events)
	if err != nil {
		return receiver.StreamRequest{}, err
	}
	return receiver.StreamRequest{
		EventsRequested:  events,
		Delivery:         &schemas.Delivery{Method: deliveryMethod(f.delivery), EndpointURL: f.endpoint, AuthorizationHeader: f.authHeader},
		Description:      f.description,
		SigningAlgorithm: f.alg,
	}, nil
}

func newStreamCreateCommand() *cobra.Command {
	var cf clientFlags
	var rf streamRequestFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a stream (poll by default, requesting every CAEP and RISC event)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := rf.request()
			if err != nil {
				return err
			}
			c, err := cf.client(cmd.Context())
			if err != nil {
				return err
			}
			cfg, err := c.CreateStream(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created stream %s (%s)\n", cfg.StreamID, cfg.Delivery.Method)
			return printJSON(cmd, cfg)
		},
	}
	cf.register(cmd)
	rf.register(cmd)
	return cmd
}

func newStreamListCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your streams",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd.Context())
			if err != nil {
				return err
			}
			list, err := c.ListStreams(cmd.Context())
			if err != nil {
				return err
			}
			return printJSON(cmd, list)
		},
	}
	cf.register(cmd)
	return cmd
}

// streamCommand builds a command that takes a stream ID as its only argument.
func streamCommand(use, short string, run func(cmd *cobra.Command, c *receiver.Client, id string) error) (*cobra.Command, *clientFlags) {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd.Context())
			if err != nil {
				return err
			}
			return run(cmd, c, args[0])
		},
	}
	cf.register(cmd)
	return cmd, &cf
}

func newStreamGetCommand() *cobra.Command {
	cmd, _ := streamCommand("get STREAM_ID", "Show a stream's configuration", func(cmd *cobra.Command, c *receiver.Client, id string) error {
		cfg, err := c.GetStream(cmd.Context(), id)
		if err != nil {
			return err
		}
		return printJSON(cmd, cfg)
	})
	return cmd
}

func newStreamUpdateCommand() *cobra.Command {
	var rf streamRequestFlags
	var cmd *cobra.Command
	cmd, _ = streamCommand("update STREAM_ID", "Change the given members of a stream (PATCH)", func(cmd *cobra.Command, c *receiver.Client, id string) error {
		req, err := rf.request()
		if err != nil {
			return err
		}
		members := map[string]any{}
		fl := cmd.Flags()
		if fl.Changed("events") {
			members["events_requested"] = req.EventsRequested
		}
		if fl.Changed("delivery") || fl.Changed("endpoint") || fl.Changed("auth-header") {
			members["delivery"] = req.Delivery
		}
		if fl.Changed("description") {
			members["description"] = req.Description
		}
		if fl.Changed("alg") {
			members["ssfd_signing_alg"] = req.SigningAlgorithm
		}
		cfg, err := c.UpdateStream(cmd.Context(), id, members)
		if err != nil {
			return err
		}
		return printJSON(cmd, cfg)
	})
	rf.register(cmd)
	return cmd
}

func newStreamReplaceCommand() *cobra.Command {
	var rf streamRequestFlags
	cmd, _ := streamCommand("replace STREAM_ID", "Replace every receiver-supplied member of a stream (PUT)", func(cmd *cobra.Command, c *receiver.Client, id string) error {
		req, err := rf.request()
		if err != nil {
			return err
		}
		cfg, err := c.ReplaceStream(cmd.Context(), id, req)
		if err != nil {
			return err
		}
		return printJSON(cmd, cfg)
	})
	rf.register(cmd)
	return cmd
}

func newStreamDeleteCommand() *cobra.Command {
	cmd, _ := streamCommand("delete STREAM_ID", "Delete a stream and everything queued for it", func(cmd *cobra.Command, c *receiver.Client, id string) error {
		if err := c.DeleteStream(cmd.Context(), id); err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "deleted stream %s\n", id)
		return nil
	})
	return cmd
}

func newStreamStatusCommand() *cobra.Command {
	var set, reason string
	cmd, _ := streamCommand("status STREAM_ID [--set enabled|paused|disabled]", "Show or change a stream's status", func(cmd *cobra.Command, c *receiver.Client, id string) error {
		var st *schemas.StreamStatusResponse
		var err error
		if set == "" {
			st, err = c.Status(cmd.Context(), id)
		} else {
			st, err = c.SetStatus(cmd.Context(), id, schemas.StreamStatus(set), reason)
		}
		if err != nil {
			return err
		}
		return printJSON(cmd, st)
	})
	cmd.Flags().StringVar(&set, "set", "", "new status: enabled, paused or disabled")
	cmd.Flags().StringVar(&reason, "reason", "", "why, with --set")
	return cmd
}

func newStreamVerifyCommand() *cobra.Command {
	var state string
	cmd, _ := streamCommand("verify STREAM_ID", "Ask for a verification event (it arrives like any SET)", func(cmd *cobra.Command, c *receiver.Client, id string) error {
		if err := c.Verify(cmd.Context(), id, state); err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "verification requested on stream %s\n", id)
		return nil
	})
	cmd.Flags().StringVar(&state, "state", "", "state to be echoed in the verification event")
	return cmd
}

func newStreamSubjectCommand(add bool) *cobra.Command {
	use, short := "remove-subject STREAM_ID SUBJECT_JSON", "Remove a subject from a stream"
	if add {
		use, short = "add-subject STREAM_ID SUBJECT_JSON", "Add a subject to a stream, e.g. '{\"format\":\"email\",\"email\":\"ada@example.com\"}'"
	}
	var cf clientFlags
	var verified bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			subject, err := schemas.ParseSubject([]byte(args[1]))
			if err != nil {
				return err
			}
			c, err := cf.client(cmd.Context())
			if err != nil {
				return err
			}
			if !add {
				return c.RemoveSubject(cmd.Context(), args[0], subject)
			}
			var v *bool
			if cmd.Flags().Changed("verified") {
				v = &verified
			}
			return c.AddSubject(cmd.Context(), args[0], subject, v)
		},
	}
	cf.register(cmd)
	if add {
		cmd.Flags().BoolVar(&verified, "verified", true, "whether you verified the subject")
	}
	return cmd
}
