package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/schemas"
)

func newEmitCommand() *cobra.Command {
	var cf clientFlags
	var typ, subject, event, txn string
	cmd := &cobra.Command{
		Use:   "emit --type EVENT --subject SUBJECT_JSON [--event CLAIMS_JSON]",
		Short: "Emit an event through an ssfd transmitter's intake API (POST /api/v1/events, scope ssf.emit)",
		Long: "Emit one event: the transmitter validates it, signs one SET per stream that carries it, and answers\n" +
			"once every SET is durably queued. --type takes a short name such as session-revoked or a URI.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			et, err := schemas.LookupEventType(typ)
			if err != nil {
				return err
			}
			if event == "" {
				event = "{}"
			}
			body, err := json.Marshal(map[string]any{"event_type": et, "subject": json.RawMessage(subject),
				"event": json.RawMessage(event), "txn": txn})
			if err != nil {
				return fmt.Errorf("--subject and --event must be JSON: %w", err)
			}
			out, err := cf.call(cmd, http.MethodPost, "/api/v1/events", bytes.NewReader(body))
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&typ, "type", schemas.EventSessionRevoked.Name(), "event type: a short name such as session-revoked, or a URI")
	fl.StringVar(&subject, "subject", "", `subject identifier, e.g. '{"format":"email","email":"ada@example.com"}'`)
	fl.StringVar(&event, "event", "", `event claims, e.g. '{"initiating_entity":"admin","reason_admin":{"en":"compromised"}}'`)
	fl.StringVar(&txn, "txn", "", "transaction id shared by every SET of this cause")
	_ = cmd.MarkFlagRequired("subject")
	return cmd
}
