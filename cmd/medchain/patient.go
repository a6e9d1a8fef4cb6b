package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/fsutil"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
)

// patientCmd hands custodial patient accounts over to their patients.
func patientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "patient", Short: "Hand a patient account an organization registered over to its patient"}

	f := &agentFlags{}
	var out, claimPassFile string
	code := &cobra.Command{
		Use:   "claim-code FHIR_ID",
		Short: "Write the claim file of a patient this organization's agent registered (POST /fhir/Patient)",
		Long: `Writes the claim file of the patient the --from agent registered under FHIR_ID: the account's
custodial key, encrypted under a claim passphrase (--claim-passphrase-file, or asked on the
terminal; at least 8 characters). Give the file and, separately, the passphrase to the patient, who
runs "medchain patient claim" on their own device. Once the patient has claimed the account, the
agent deletes the custodial key and reads and writes only by the patient's grant.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out is required: %w", errUsage)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			a, _, err := f.open(ctx)
			if err != nil {
				return err
			}
			pass, err := claimPassphrase(claimPassFile)
			if err != nil {
				return err
			}
			raw, err := a.ClaimCode(ctx, args[0], pass)
			if err != nil {
				return fmt.Errorf("patient %s: %w", args[0], err)
			}
			if err := fsutil.WriteFileAtomic(out, raw, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "claim file for patient %s written to %s; give it and its passphrase to the patient, separately\n", args[0], out)
			return nil
		},
	}
	f.register(code)
	code.Flags().StringVar(&out, "out", "", "file to write the claim file to (required)")
	code.Flags().StringVar(&claimPassFile, "claim-passphrase-file", "", "file holding the claim passphrase (else asked on the terminal)")

	var home, nodeURL, file, name, passFile string
	claim := &cobra.Command{
		Use:   "claim --file CLAIM_FILE --name KEYNAME",
		Short: "Take over your patient account from the claim file the organization gave you",
		Long: `Opens the claim file (with its claim passphrase: --claim-passphrase-file, or asked on the
terminal), draws new keys, stores them in this home's keyring as KEYNAME (under a passphrase of your
own), and rotates the account to them on the ledger. From then on the key the organization held
signs and opens nothing new; the organization keeps the grant the account gave it at registration,
which you may revoke ("medchain tx revoke").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" || name == "" {
				return fmt.Errorf("--file and --name are required: %w", errUsage)
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("claim file: %w", err)
			}
			pass, err := claimPassphrase(passFile)
			if err != nil {
				return err
			}
			kr, err := keyring.OpenFile(node.KeyringDir(home))
			if err != nil {
				return err
			}
			if _, err := kr.Show(name); err == nil {
				return fmt.Errorf("key %q: %w", name, keyring.ErrExists)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			next, err := agent.ClaimAccount(ctx, client.New(nodeURL), raw, pass, name, func(k *keyring.Key) error {
				own, err := newPassphrase()
				if err != nil {
					return err
				}
				return kr.Import(k, own)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "account %s is yours: its keys are rotated and stored as %q; delete the claim file\n", next.Address, name)
			return nil
		},
	}
	claim.Flags().StringVar(&home, "home", ".medchain", "home whose keyring gets the new key")
	claim.Flags().StringVar(&nodeURL, "node", "http://127.0.0.1:8080", nodeHelp)
	claim.Flags().StringVar(&file, "file", "", "the claim file (required)")
	claim.Flags().StringVar(&name, "name", "", "name of the new key in the keyring (required)")
	claim.Flags().StringVar(&passFile, "claim-passphrase-file", "", "file holding the claim passphrase (else asked on the terminal)")
	cmd.AddCommand(code, claim)
	return cmd
}

// claimPassphrase reads a claim passphrase from file (without one trailing newline), or from the
// terminal.
func claimPassphrase(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("claim passphrase file: %w", err)
		}
		return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
	}
	return readTerminal("claim passphrase: ", "use --claim-passphrase-file FILE or run on a terminal")
}
