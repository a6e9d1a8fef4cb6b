package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/coverage"
)

func coverageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "coverage", Short: "Zero-knowledge proof of insurance coverage: credentials, proofs, the circuit's key ceremony"}
	cmd.AddCommand(ceremonyCmd())
	return cmd
}

// progressTo prints a ceremony's steps with the time each began.
func progressTo(cmd *cobra.Command) coverage.Progress {
	return func(format string, args ...any) {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

func ceremonyCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{Use: "ceremony", Short: "The coverage circuit's multi-party Groth16 setup (a transcript in a directory)"}
	cmd.PersistentFlags().StringVar(&dir, "dir", "coverage/ceremony", "the ceremony's directory")

	var phase int
	contribute := &cobra.Command{Use: "contribute", Short: "Add a contribution to a phase (its randomness never leaves memory)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			return coverage.Contribute(dir, phase, progressTo(cmd))
		}}
	contribute.Flags().IntVar(&phase, "phase", 1, "1 (powers of tau) or 2 (the circuit's)")

	var beacon string
	seal := &cobra.Command{Use: "seal", Short: "End a phase with a public random beacon chosen after its last contribution; sealing phase 2 writes the keys", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := hex.DecodeString(beacon)
			if err != nil {
				return fmt.Errorf("--beacon must be hex: %w", err)
			}
			return coverage.Seal(dir, phase, b, progressTo(cmd))
		}}
	seal.Flags().IntVar(&phase, "phase", 1, "the phase to seal")
	seal.Flags().StringVar(&beacon, "beacon", "", "the beacon, hex, at least 16 bytes (e.g. a drand round's randomness)")

	verify := &cobra.Command{Use: "verify", Short: "Check every contribution and reproduce the keys from the transcript, byte for byte", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := coverage.VerifyCeremony(dir, progressTo(cmd))
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), h)
			return nil
		}}
	cmd.AddCommand(contribute, seal, verify)
	return cmd
}
