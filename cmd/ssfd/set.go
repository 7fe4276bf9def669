package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/receiver"
)

func newSETCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "set", Short: "Decode and verify Security Event Tokens"}
	cmd.AddCommand(newSETDecodeCommand(), newSETVerifyCommand())
	return cmd
}

// readToken takes the SET from the first argument, or from standard input when there is none or it is "-".
func readToken(cmd *cobra.Command, args []string) (string, error) {
	if len(args) == 1 && args[0] != "-" {
		return strings.TrimSpace(args[0]), nil
	}
	data, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("no SET given: pass it as an argument or on standard input")
	}
	return token, nil
}

func newSETDecodeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "decode [SET|-]",
		Short: "Pretty-print the header and claims of a SET without verifying it",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token, err := readToken(cmd, args)
			if err != nil {
				return err
			}
			header, payload, err := keys.Decode(token)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			return printJSON(cmd, struct {
				Header json.RawMessage `json:"header"`
				Claims json.RawMessage `json:"claims"`
			}{header, compactOrQuote(payload)})
		},
	}
}

// compactOrQuote returns payload when it is JSON, and otherwise the payload as a JSON string.
func compactOrQuote(payload []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, payload) == nil {
		return buf.Bytes()
	}
	quoted, _ := json.Marshal(string(payload))
	return quoted
}

func newSETVerifyCommand() *cobra.Command {
	var jwks, iss string
	var aud, algs []string
	var skew time.Duration
	cmd := &cobra.Command{
		Use:   "verify --jwks FILE|URL --iss ISSUER --aud AUDIENCE [SET|-]",
		Short: "Verify a SET as a receiver would (exit 0 valid, 1 invalid with the RFC 8935 code)",
		Long: "Verify a SET in the order of spec/ssf.md §1.3: signature with an algorithm allow-list, typ\n" +
			"secevent+jwt, kid, iss, aud, iat and the SSF claim rules, and the event payload. On success print\n" +
			"the claims and exit 0; otherwise print the RFC 8935 error code and the reason and exit 1.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token, err := readToken(cmd, args)
			if err != nil {
				return err
			}
			src, err := keySource(jwks)
			if err != nil {
				return err
			}
			allow := make([]keys.Algorithm, 0, len(algs))
			for _, a := range algs {
				alg, err := keys.ParseAlgorithm(a)
				if err != nil {
					return err
				}
				allow = append(allow, alg)
			}
			v, err := receiver.NewVerifier(src, iss, aud, receiver.WithAlgorithms(allow...), receiver.WithClockSkew(skew))
			if err != nil {
				return err
			}
			set, err := v.Verify(cmd.Context(), token)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "valid: jti %s, event %s\n", set.ID, set.Event.Type)
			return printJSON(cmd, set)
		},
	}
	cmd.Flags().StringVar(&jwks, "jwks", "", "JWKS of the transmitter: a file, or an http(s) URL")
	cmd.Flags().StringVar(&iss, "iss", "", "the issuer the SET must carry")
	cmd.Flags().StringSliceVar(&aud, "aud", nil, "an audience that identifies this receiver (repeatable)")
	cmd.Flags().StringSliceVar(&algs, "alg", []string{"RS256", "PS256", "ES256", "EdDSA"}, "allowed algorithms")
	cmd.Flags().DurationVar(&skew, "skew", time.Minute, "how far in the future iat may be")
	for _, f := range []string{"jwks", "iss", "aud"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

// keySource loads a JWKS from a file, or returns a remote JWKS cache for an http(s) URL.
func keySource(location string) (keys.KeySource, error) {
	if strings.HasPrefix(location, "https://") || strings.HasPrefix(location, "http://") {
		return keys.NewRemoteJWKS(location, keys.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	}
	data, err := os.ReadFile(location)
	if err != nil {
		return nil, err
	}
	set, err := keys.ParseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", location, err)
	}
	return keys.StaticKeys(set), nil
}
