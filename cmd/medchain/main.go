// Command medchain runs medchain nodes and dev networks and is the CLI for keys, transactions
// and queries. Each command group lives in its own file.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "medchain",
		Short:         "medchain: patient-controlled health data on a permissioned BFT ledger",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(devCmd(), patientCmd(), nodeCmd(), testnetCmd(), keysCmd(), txCmd(), queryCmd(), lightCmd(), networkCmd(), statusCmd(), benchCmd(), supplyCmd(),
		agentCmd(), recordsCmd(), consentCmd(), accessCmd(), auditCmd(), emergencyCmd(), coverageCmd(), claimsCmd(),
		notarizeCmd(), verifyNotarizedCmd(), trialsCmd(), researchCmd(), telemedCmd(), careCmd(), programsCmd())
	strictGroups(root)
	return root
}

// strictGroups makes every command group (a command with subcommands and nothing to run of its
// own) refuse an unknown subcommand: cobra prints such a group's help and exits 0 for
// `medchain records lsit`, so a typo looked like success. A group run without arguments still
// prints its help.
func strictGroups(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		strictGroups(c)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // as cobra's own suggestions
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, ", "))
		}
		return fmt.Errorf("%s; run '%s --help' for the list", msg, cmd.CommandPath())
	}
}
