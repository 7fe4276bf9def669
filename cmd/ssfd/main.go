// Command ssfd is the OpenID Shared Signals Framework server and its command-line tools: a transmitter of
// Security Event Tokens, a receiver that acts on them, and a token issuer for AI agents and workloads.
//
// Every subcommand is a thin layer over a package of this module; no business logic lives here.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit code: 1 for "checked and found invalid", 2 for usage and I/O errors.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the CLI with the given arguments and streams and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "ssfd:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 2
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "ssfd",
		Short:         "OpenID Shared Signals Framework server: transmitter, receiver and agent token issuer",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCommand(), newServeCommand(), newStreamCommand(), newPollCommand(), newEmitCommand(), newDeadLettersCommand(), newReceiveCommand(), newReceiverCommand(), newClientCommand(), newSessionsCommand(), newRevokeCommand(), newKillSwitchCommand(), newTokenCommand(), newDemoRSCommand(),
		newSinkCommand(), newFollowCommand(), newConfigCommand(),
		newKeysCommand(), newSETCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of ssfd",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "ssfd", version)
			return err
		},
	}
}
