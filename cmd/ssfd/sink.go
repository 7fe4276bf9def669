package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/natsbus"
	"github.com/ssfd/ssfd/receiver"
)

// printSET prints one SET's claims, unverified, as a line of JSON.
func printSET(cmd *cobra.Command, via string, set []byte) {
	_, claims, err := keys.Decode(string(set))
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: not a SET: %v\n", via, err)
		return
	}
	_ = printJSON(cmd, map[string]any{"via": via, "claims": compactOrQuote(claims)})
}

func newSinkCommand() *cobra.Command {
	var addr, auth, jwks, iss string
	var aud []string
	cmd := &cobra.Command{
		Use:   "sink --addr 127.0.0.1:9000",
		Short: "Run a throwaway RFC 8935 push endpoint that prints every SET it receives",
		Long: "A development tool: it answers every push with 202 and prints the SET's claims. With --auth it\n" +
			"requires that Authorization value; with --jwks, --iss and --aud it verifies each SET as a receiver\n" +
			"would and answers invalid ones with 400 and the RFC 8935 error code.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v *receiver.Verifier
			if jwks != "" {
				src, err := keySource(jwks)
				if err != nil {
					return err
				}
				if v, err = receiver.NewVerifier(src, iss, aud); err != nil {
					return err
				}
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "push endpoint listening on http://%s/ (answers 202)\n", ln.Addr())
			srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
				if auth != "" && r.Header.Get("Authorization") != auth {
					writeSETError(w, "authentication_failed", "wrong or missing Authorization")
					return
				}
				if v != nil {
					if _, err := v.Verify(r.Context(), strings.TrimSpace(string(body))); err != nil {
						var ve *receiver.VerifyError
						if errors.As(err, &ve) {
							writeSETError(w, string(ve.Code), ve.Description)
							return
						}
					}
				}
				printSET(cmd, "push", body)
				w.WriteHeader(http.StatusAccepted)
			})}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			go func() { <-ctx.Done(); _ = srv.Close() }()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:9000", "host:port to listen on")
	fl.StringVar(&auth, "auth", "", "the Authorization value pushes must carry (the stream's authorization_header)")
	fl.StringVar(&jwks, "jwks", "", "verify SETs with this JWKS (file or URL); needs --iss and --aud")
	fl.StringVar(&iss, "iss", "", "with --jwks: the issuer SETs must carry")
	fl.StringSliceVar(&aud, "aud", nil, "with --jwks: an audience of this receiver")
	return cmd
}

// writeSETError answers a push with an RFC 8935 §2.3 error.
func writeSETError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Language", "en")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"err": code, "description": desc})
}

func newFollowCommand() *cobra.Command {
	var streamID, url string
	cmd := &cobra.Command{
		Use:   "follow --stream STREAM_ID",
		Short: "Print the SETs of a NATS-delivered stream as they arrive on ssf.set.<stream_id>",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(cmd.ErrOrStderr(), "following %s%s on %s\n", natsbus.SubjectSETPrefix, streamID, url)
			return natsbus.FollowSETs(ctx, url, streamID, func(set []byte) { printSET(cmd, "nats", set) })
		},
	}
	cmd.Flags().StringVar(&streamID, "stream", "", "stream ID")
	cmd.Flags().StringVar(&url, "nats-url", envOr("SSFD_NATS_URL", "nats://127.0.0.1:4222"), "NATS server (env SSFD_NATS_URL)")
	_ = cmd.MarkFlagRequired("stream")
	return cmd
}
