package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/keyring"
)

// policyFile is a policy as its insurer writes it: benefits by their codes in clear (the
// command turns them into service tags under the policy's service key before anything leaves).
type policyFile struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Currency    string `json:"currency"`
	AnnualLimit string `json:"annual_limit"` // decimal amounts, e.g. "5000.00"
	Deductible  string `json:"deductible"`
	CoPay       string `json:"co_pay"`
	Rule        string `json:"rule,omitempty"`
	Benefits    []struct {
		System    string `json:"system"` // a FHIR code system URI: CPT, HCPCS or SNOMED CT
		Code      string `json:"code"`
		Allowed   string `json:"allowed"`
		PriorAuth bool   `json:"prior_auth,omitempty"`
	} `json:"benefits"`
}

func claimsCmd() *cobra.Command {
	f := &txFlags{}
	cmd := &cobra.Command{Use: "claims", Short: "Insurance claims: policies, enrollment, funds, reviews, balances"}
	f.register(cmd)
	send := func(cmd *cobra.Command, typ string, msg any) error {
		_, _, err := f.send(cmd, typ, func(*keyring.Key, string, uint64) (any, error) { return msg, nil })
		return err
	}

	var out string
	serviceKey := &cobra.Command{Use: "service-key", Short: "Draw a policy's service key (an insurer shares it with the providers it contracts)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required: %w", errUsage)
			}
			k := make([]byte, insurance.ServiceKeyBytes)
			rand.Read(k)
			return writeSecret(out, []byte(hex.EncodeToString(k)+"\n"))
		}}
	serviceKey.Flags().StringVar(&out, "out", "", "where to write the key (hex)")

	var file, keyFile string
	register := &cobra.Command{Use: "register-policy", Short: "Register a policy from a JSON file (an attested insurer)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pf policyFile
			if err := readJSONFile(file, &pf); err != nil {
				return err
			}
			key, err := readServiceKey(keyFile)
			if err != nil {
				return err
			}
			m := insurance.RegisterPolicy{ID: pf.ID, Name: pf.Name, Currency: pf.Currency, Rule: pf.Rule}
			for _, a := range []struct {
				s  string
				to *int64
			}{{pf.AnnualLimit, &m.AnnualLimit}, {pf.Deductible, &m.Deductible}, {pf.CoPay, &m.CoPay}} {
				if a.s == "" {
					continue
				}
				if *a.to, err = agent.MinorUnits(a.s); err != nil {
					return err
				}
			}
			for _, b := range pf.Benefits {
				allowed, err := agent.MinorUnits(b.Allowed)
				if err != nil {
					return fmt.Errorf("benefit %s: %w", b.Code, err)
				}
				m.Benefits = append(m.Benefits, insurance.Benefit{Service: insurance.ServiceTag(key, b.System, b.Code), Allowed: allowed, PriorAuth: b.PriorAuth})
			}
			return send(cmd, insurance.TypeRegisterPolicy, &m)
		}}
	register.Flags().StringVar(&file, "file", "", "the policy (JSON: id, name, currency, annual_limit, deductible, co_pay, rule, benefits[system, code, allowed, prior_auth])")
	register.Flags().StringVar(&keyFile, "service-key", "", "the policy's service key file")

	var credFile, policy string
	enroll := &cobra.Command{Use: "enroll", Short: "Enroll a member in a policy by the coverage credential you issued", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			held, err := readHeld(credFile)
			if err != nil {
				return err
			}
			leaf := held.Credential.Leaf()
			b := leaf.Bytes()
			return send(cmd, insurance.TypeEnroll, &insurance.Enroll{Policy: policy, Member: held.Credential.Account, Leaf: b[:],
				Start: held.Credential.Start, End: held.Credential.End})
		}}
	enroll.Flags().StringVar(&credFile, "credential", "", "the credential file coverage issue wrote")
	enroll.Flags().StringVar(&policy, "policy", "", "the policy id")

	var amount string
	deposit := &cobra.Command{Use: "deposit", Short: "Add funds to your settlement balance (an insurer)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := agent.MinorUnits(amount)
			if err != nil {
				return err
			}
			return send(cmd, insurance.TypeDeposit, &insurance.Deposit{Amount: n})
		}}
	deposit.Flags().StringVar(&amount, "amount", "", "the amount, e.g. 10000.00")

	var rv insurance.Review
	var provider string
	var deny bool
	review := &cobra.Command{Use: "review", Short: "Approve or deny a pended claim (its insurer)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := resolveAddr(f.home, provider)
			if err != nil {
				return err
			}
			rv.Provider, rv.Approve = p, !deny
			return send(cmd, insurance.TypeReview, &rv)
		}}
	review.Flags().StringVar(&provider, "provider", "", "the provider that submitted the claim")
	review.Flags().StringVar(&rv.ID, "id", "", "the claim id")
	review.Flags().BoolVar(&deny, "deny", false, "deny the claim (default: approve)")
	review.Flags().StringVar(&rv.Reason, "reason", "", "why")

	balance := &cobra.Command{Use: "balance ACCOUNT", Short: "An account's settlement balance", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := resolveAddr(f.home, args[0])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			b, err := client.New(f.nodeURL).Balance(ctx, a)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d.%02d\n", a, b/100, b%100)
			return nil
		}}

	cmd.AddCommand(serviceKey, register, enroll, deposit, review, balance)
	return cmd
}

// readServiceKey reads a service key file (hex).
func readServiceKey(path string) ([]byte, error) {
	raw, err := readLimited(path, 1<<10)
	if err != nil {
		return nil, err
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(k) != insurance.ServiceKeyBytes {
		return nil, fmt.Errorf("%s: a service key is %d bytes in hex", path, insurance.ServiceKeyBytes)
	}
	return k, nil
}

// writeSecret writes a new secret file, readable by its owner only; it never overwrites one.
func writeSecret(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
