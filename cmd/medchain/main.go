// Command medchain runs medchain nodes and dev networks and is the CLI for keys, transactions
// and queries. Each command group lives in its own file.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
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
	root.AddCommand(devCmd(), nodeCmd(), testnetCmd(), keysCmd(), txCmd(), queryCmd(), statusCmd(), benchCmd(), supplyCmd(),
		agentCmd(), recordsCmd(), consentCmd(), accessCmd(), auditCmd(), emergencyCmd())
	return root
}
