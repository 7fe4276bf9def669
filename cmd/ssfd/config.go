package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/internal/config"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Print an example configuration file or check one"}
	cmd.AddCommand(&cobra.Command{
		Use:   "example",
		Short: "Print a commented configuration file with every key at its default",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(config.Example)
			return err
		},
	}, &cobra.Command{
		Use:   "check FILE|-",
		Short: "Check a configuration file (- reads standard input) and report every bad field by its path",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := config.Default()
			var err error
			if args[0] == "-" {
				var data []byte
				if data, err = io.ReadAll(cmd.InOrStdin()); err == nil {
					err = cfg.Load(data)
				}
			} else {
				err = cfg.LoadFile(args[0])
			}
			if err == nil {
				err = cfg.Validate()
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), "configuration is valid")
			return err
		},
	})
	return cmd
}
