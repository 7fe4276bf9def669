package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/internal/keys"
)

func newKeysCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Generate signing keys and export JWKS documents"}
	cmd.AddCommand(newKeysGenerateCommand(), newKeysJWKSCommand())
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
