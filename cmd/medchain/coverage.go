package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/fsutil"
	"github.com/medchain/medchain/keyring"
)

func coverageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "coverage", Short: "Zero-knowledge proof of insurance coverage: credentials, proofs, the circuit's key ceremony"}
	f := &txFlags{}
	f.register(cmd)

	registerKey := &cobra.Command{Use: "register-key", Short: "Register your coverage signing key (an attested insurer; derived from your account key)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, _, err := f.send(cmd, insurance.TypeRegisterKey, func(k *keyring.Key, _ string, _ uint64) (any, error) {
				ins, err := coverage.InsurerFromSeed(k.Signing.Seed())
				if err != nil {
					return nil, err
				}
				return &insurance.RegisterKey{Key: ins.PublicKey()}, nil
			})
			return err
		}}

	var coverageFile, patient, out string
	issue := &cobra.Command{Use: "issue", Short: "Issue a coverage credential from a FHIR R4 Coverage to a patient's account (an insurer)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" || coverageFile == "" || patient == "" {
				return fmt.Errorf("--coverage, --patient and --out are required: %w", errUsage)
			}
			raw, err := readLimited(coverageFile, fhir.MaxResourceBytes)
			if err != nil {
				return err
			}
			account, err := resolveAddr(f.home, patient)
			if err != nil {
				return err
			}
			cred, err := agent.CredentialFromCoverage(raw, "", account)
			if err != nil {
				return err
			}
			held := &coverage.Held{Credential: *cred}
			_, _, err = f.send(cmd, insurance.TypeIssue, func(k *keyring.Key, _ string, _ uint64) (any, error) {
				ins, err := coverage.InsurerFromSeed(k.Signing.Seed())
				if err != nil {
					return nil, err
				}
				held.Insurer, held.Credential.Insurer = k.Address, k.Address
				if err := ins.Issue(&held.Credential); err != nil {
					return nil, err
				}
				// Written before the transaction: a credential the ledger refuses is harmless, one
				// it accepts and that was lost would need revoking.
				return &insurance.Issue{Credentials: []insurance.Issued{insurance.IssuedOf(&held.Credential)}}, writeJSONFile(out, held)
			})
			if err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "credential for %s (plan %s) written to %s: hand it to the patient\n", account, cred.Plan, out)
			}
			return err
		}}
	issue.Flags().StringVar(&coverageFile, "coverage", "", "the FHIR R4 Coverage resource (JSON file)")
	issue.Flags().StringVar(&patient, "patient", "", "the patient's account address or key name")
	issue.Flags().StringVar(&out, "out", "", "where to write the credential (the patient's to keep)")

	var credFile string
	revoke := &cobra.Command{Use: "revoke", Short: "Revoke a credential you issued", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			held, err := readHeld(credFile)
			if err != nil {
				return err
			}
			id := held.Credential.RevocationID.Bytes()
			_, _, err = f.send(cmd, insurance.TypeRevoke, func(*keyring.Key, string, uint64) (any, error) {
				return &insurance.Revoke{RevocationIDs: [][]byte{id[:]}}, nil
			})
			return err
		}}
	revoke.Flags().StringVar(&credFile, "credential", "", "the credential file issue wrote")

	var insurer, date string
	var plans []string
	challenge := &cobra.Command{Use: "challenge", Short: "Ask a patient for a proof of coverage (a verifier): writes a challenge with a fresh nonce", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.from == "" || insurer == "" || len(plans) == 0 || out == "" {
				return fmt.Errorf("--from, --insurer, --plan and --out are required: %w", errUsage)
			}
			verifier, err := resolveAddr(f.home, f.from)
			if err != nil {
				return err
			}
			ins, err := resolveAddr(f.home, insurer)
			if err != nil {
				return err
			}
			day, err := dayOf(date)
			if err != nil {
				return err
			}
			nonce, err := coverage.NewNonce()
			if err != nil {
				return err
			}
			ch := &coverage.Challenge{Verifier: verifier, Insurer: ins, Plans: plans, Day: day, Nonce: nonce}
			if err := writeJSONFile(out, ch); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "challenge written to %s: send it to the patient; it is good for one proof\n", out)
			return nil
		}}
	challenge.Flags().StringVar(&insurer, "insurer", "", "the insurer the coverage must be from (address or key name)")
	challenge.Flags().StringSliceVar(&plans, "plan", nil, "a plan code you accept (repeat; at most 8)")
	challenge.Flags().StringVar(&date, "date", "", "the date of service, YYYY-MM-DD (default today)")
	challenge.Flags().StringVar(&out, "out", "", "where to write the challenge")

	var challengeFile string
	prove := &cobra.Command{Use: "prove", Short: "Answer a verifier's challenge with a zero-knowledge proof of your coverage (a patient)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required: %w", errUsage)
			}
			held, err := readHeld(credFile)
			if err != nil {
				return err
			}
			var ch coverage.Challenge
			if err := readJSONFile(challengeFile, &ch); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			m, err := agent.ProveCoverage(ctx, client.New(f.nodeURL), held, &ch)
			if err != nil {
				return err
			}
			if err := writeJSONFile(out, m); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "proof written to %s (%d bytes of proof; it shows no member id, plan or dates)\n", out, len(m.Proof))
			return nil
		}}
	prove.Flags().StringVar(&credFile, "credential", "", "your credential file")
	prove.Flags().StringVar(&challengeFile, "challenge", "", "the verifier's challenge file")
	prove.Flags().StringVar(&out, "out", "", "where to write the proof")

	var proofFile string
	var record bool
	verify := &cobra.Command{Use: "verify", Short: "Check a patient's proof against your challenge (a verifier); the challenge is used up", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var ch coverage.Challenge
			if err := readJSONFile(challengeFile, &ch); err != nil {
				return err
			}
			var m insurance.Verify
			if err := readJSONFile(proofFile, &m); err != nil {
				return err
			}
			if err := agent.CheckAnswer(&ch, &m); err != nil {
				return err
			}
			if record {
				if _, _, err := f.send(cmd, insurance.TypeVerify, func(*keyring.Key, string, uint64) (any, error) { return &m, nil }); err != nil {
					return err
				}
			} else {
				ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
				defer cancel()
				if _, err := client.New(f.nodeURL).VerifyCoverage(ctx, ch.Verifier, &m); err != nil {
					return fmt.Errorf("not covered: %w", err)
				}
			}
			if err := os.Remove(challengeFile); err != nil {
				return fmt.Errorf("the proof verified, but the challenge could not be used up: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "covered: %s holds an unrevoked credential of %s valid on %s for one of %s\n",
				m.Account, m.Insurer, time.Unix(int64(m.Day)*86400, 0).UTC().Format(time.DateOnly), strings.Join(m.Plans, ", "))
			return nil
		}}
	verify.Flags().StringVar(&challengeFile, "challenge", "", "the challenge you sent")
	verify.Flags().StringVar(&proofFile, "proof", "", "the patient's proof")
	verify.Flags().BoolVar(&record, "record", false, "verify on the ledger and record the verification (every validator checks it; the nonce is spent on chain)")

	cmd.AddCommand(ceremonyCmd(), registerKey, issue, revoke, challenge, prove, verify, importCoverageCmd())
	return cmd
}

// dayOf reads a YYYY-MM-DD date as a coverage day; empty is today.
func dayOf(s string) (uint32, error) {
	if s == "" {
		return coverage.Day(time.Now()), nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return coverage.Day(t), nil
}

func readHeld(path string) (*coverage.Held, error) {
	var h coverage.Held
	if err := readJSONFile(path, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("a file is required: %w", errUsage)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return raw, nil
}

// readJSONFile decodes a small JSON file (credentials, challenges, proofs), rejecting unknown fields.
func readJSONFile(path string, v any) error {
	raw, err := readLimited(path, 64<<10)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeJSONFile writes v as indented JSON, readable by its owner only.
func writeJSONFile(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(raw, '\n'), 0o600)
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

// importCoverageCmd stores a patient's insurance card and its credential as the patient's record.
func importCoverageCmd() *cobra.Command {
	var af agentFlags
	var credFile, coverageFile string
	cmd := &cobra.Command{Use: "import", Short: "Keep your insurance card (a FHIR Coverage) and its credential as your encrypted record (a patient)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			held, err := readHeld(credFile)
			if err != nil {
				return err
			}
			raw, err := readLimited(coverageFile, fhir.MaxResourceBytes)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			a, _, err := af.open(ctx)
			if err != nil {
				return err
			}
			s, err := a.StoreCoverage(ctx, raw, held)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored as Coverage/%s: prove with it through the FHIR facade (Coverage/%s/$prove-coverage)\n", s.Anchor.ID, s.Anchor.ID)
			return nil
		}}
	af.register(cmd)
	cmd.Flags().StringVar(&credFile, "credential", "", "the credential file your insurer gave you")
	cmd.Flags().StringVar(&coverageFile, "coverage", "", "the FHIR R4 Coverage it was issued from")
	return cmd
}
