package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/server"
)

func newKeysCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Generate signing keys and export JWKS documents"}
	cmd.AddCommand(newKeysGenerateCommand(), newKeysJWKSCommand(), newKeysRotateCommand(), newKeysRotateLiveCommand())
	return cmd
}

func newKeysGenerateCommand() *cobra.Command {
	var alg, out string
	cmd := &cobra.Command{
		Use:   "generate --alg ES256 --out FILE",
		Short: "Generate a signing key and write it as a private JWK (file mode 0600)",
		Long: "Generate a signing key (RS256 and PS256: RSA 2048; ES256: P-256; EdDSA: Ed25519) whose kid is its\n" +
			"RFC 7638 thumbprint, write it to FILE with mode 0600, and print the kid.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := keys.ParseAlgorithm(alg)
			if err != nil {
				return err
			}
			k, err := keys.Generate(a)
			if err != nil {
				return err
			}
			if err := keys.WriteKeyFile(out, k); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s key %s to %s\n", a, k.ID(), out)
			return err
		},
	}
	cmd.Flags().StringVar(&alg, "alg", string(keys.ES256), "algorithm: RS256, PS256, ES256 or EdDSA")
	cmd.Flags().StringVar(&out, "out", "", "file to write the private key to (created with mode 0600)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newKeysJWKSCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "jwks FILE...",
		Short: "Print the public JWKS (RFC 7517) of one or more key files",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ks []*keys.Key
			for _, path := range args {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				k, err := keys.ParseKey(data)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				ks = append(ks, k)
			}
			return printJSON(cmd, keys.NewJWKS(ks...))
		},
	}
}

// printJSON writes v as indented JSON to the command's output.
func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func newKeysRotateCommand() *cobra.Command {
	var dataDir string
	var algs []string
	cmd := &cobra.Command{
		Use:   "rotate --data-dir DIR [--alg RS256]",
		Short: "Rotate the SET signing keys of a stopped ssfd: next becomes active, active is retired",
		Long: "Rotate the key rings in <data-dir>/keys. The next key, published in the JWKS since the last rotation,\n" +
			"becomes the signing key; the active key is retired but stays published for 7 days so receivers can\n" +
			"still verify SETs it signed; a new next key is generated. Run it while ssfd is stopped, then start it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, alg := range algs {
				path := filepath.Join(dataDir, "keys", "set-"+alg+".json")
				ring, err := keys.LoadRing(path)
				if err != nil {
					return err
				}
				before := ring.Active().ID()
				if err := ring.Rotate(); err != nil {
					return err
				}
				if err := keys.SaveRing(path, ring); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: active key %s (was %s)\n", alg, ring.Active().ID(), before)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./data", "data directory of the stopped ssfd")
	cmd.Flags().StringSliceVar(&algs, "alg", []string{"RS256", "ES256", "EdDSA"}, "rings to rotate")
	return cmd
}

func newKeysRotateLiveCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "rotate-live [--url URL] [--token-file F]",
		Short: "Rotate the SET signing keys of a running ssfd (every replica of a cluster): needs scope ssfd.admin",
		Long: "Ask a running ssfd to rotate its SET signing keys. The next key, published since the last rotation,\n" +
			"signs from now on; the active key is retired but stays published for 7 days. In a cluster the rings are\n" +
			"shared: one replica rotates them by compare-and-set and every other replica takes the new ring within\n" +
			"moments, while receivers verify both keys.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := cf.call(cmd, http.MethodPost, server.PathKeyRotation, nil)
			if err != nil {
				return err
			}
			var resp server.KeyRotation
			if err := json.Unmarshal(out, &resp); err != nil {
				return fmt.Errorf("the answer is not a key rotation answer: %w", err)
			}
			algs := make([]string, 0, len(resp.Active))
			for alg := range resp.Active {
				algs = append(algs, alg)
			}
			slices.Sort(algs)
			for _, alg := range algs {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: active key %s\n", alg, resp.Active[alg])
			}
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}
