package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/tx"
)

// nodeHelp describes the --node flag of every command that talks to a node's API.
const nodeHelp = "node API URL, or several of one network separated by commas (http://a:8080,http://b:8080): a request a node cannot answer goes to the next"

// txFlags are shared by every transaction command.
type txFlags struct {
	home, from, nodeURL, wait string
}

func (f *txFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.home, "home", ".medchain", "home whose keyring holds --from")
	cmd.PersistentFlags().StringVar(&f.from, "from", "", "name of the signing key (required)")
	cmd.PersistentFlags().StringVar(&f.nodeURL, "node", "http://127.0.0.1:8080", nodeHelp)
	cmd.PersistentFlags().StringVar(&f.wait, "wait", "commit", "wait for check or commit")
}

// send signs the message built by build (which may use the key and the nonce) and submits it.
func (f *txFlags) send(cmd *cobra.Command, typ string, build func(k *keyring.Key, chainID string, nonce uint64) (any, error)) (*api.TxResult, *keyring.Key, error) {
	if f.from == "" {
		return nil, nil, fmt.Errorf("--from is required: %w", errUsage)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
	defer cancel()
	k, err := loadKey(f.home, f.from)
	if err != nil {
		return nil, nil, err
	}
	c := client.New(f.nodeURL)
	st, err := c.Status(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("node at %s: %w", f.nodeURL, err)
	}
	var nonce uint64
	acc, _, err := c.Account(ctx, k.Address, false)
	switch {
	case err == nil:
		nonce = acc.Nonce
	case typ == identity.TypeRegister && isNotFound(err):
	default:
		return nil, nil, fmt.Errorf("account %s: %w", k.Address, err)
	}
	msg, err := build(k, st.ChainID, nonce)
	if err != nil {
		return nil, nil, err
	}
	raw, err := tx.Sign(k.Signing, st.ChainID, k.Address, nonce, typ, msg)
	if err != nil {
		return nil, nil, err
	}
	res, err := c.Submit(ctx, raw, f.wait)
	if err != nil {
		return nil, nil, err
	}
	out := cmd.OutOrStdout()
	if res.Code != 0 {
		return res, k, fmt.Errorf("tx %s rejected at %s: %s (code %d): %s", res.Hash, res.Stage, codes.Code(res.Code), res.Code, res.Log)
	}
	if res.Stage == "commit" {
		fmt.Fprintf(out, "committed in block %d: tx %s\n", res.Height, res.Hash)
	} else {
		fmt.Fprintf(out, "accepted into the mempool: tx %s\n", res.Hash)
	}
	for _, e := range res.Events {
		fmt.Fprintf(out, "  %s", e.Type)
		for _, a := range e.Attributes {
			fmt.Fprintf(out, " %s=%s", a.Key, a.Value)
		}
		fmt.Fprintln(out)
	}
	return res, k, nil
}

func isNotFound(err error) bool {
	e, ok := err.(*client.Error)
	return ok && e.Status == 404
}

var hexAddr = regexp.MustCompile(`^[0-9a-f]{40}$`)

// resolveAddr accepts an address or the name of a key in the home's keyring.
func resolveAddr(home, s string) (tx.Address, error) {
	s = trimAddr(s)
	if hexAddr.MatchString(s) {
		return tx.Address(s), nil
	}
	kr, err := keyring.OpenFile(node.KeyringDir(home))
	if err != nil {
		return "", err
	}
	p, err := kr.Show(s)
	if err != nil {
		return "", fmt.Errorf("%q is neither an address nor a key in %s: %w", s, node.KeyringDir(home), err)
	}
	return p.Address, nil
}

// parseDate accepts YYYY-MM-DD, RFC 3339 or a duration from now such as 8760h.
func parseDate(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(d).UTC(), nil
	}
	for _, layout := range []string{"2006-01-02", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("date %q: use YYYY-MM-DD, RFC 3339 or a duration like 8760h", s)
}

func txCmd() *cobra.Command {
	f := &txFlags{}
	cmd := &cobra.Command{Use: "tx", Short: "Sign and submit transactions"}
	f.register(cmd)

	var role, orgKind, name string
	register := &cobra.Command{
		Use: "register", Short: "Register the --from key's account", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, _, err := f.send(cmd, identity.TypeRegister, func(k *keyring.Key, _ string, _ uint64) (any, error) {
				return identity.Register{Role: identity.Role(role), OrgKind: orgKind, Name: name, EncryptionKey: k.Encryption.PublicKey().Bytes()}, nil
			})
			return err
		},
	}
	register.Flags().StringVar(&role, "role", "patient", "patient, practitioner or organization")
	register.Flags().StringVar(&orgKind, "org-kind", "", "for organizations: "+strings.Join(identity.OrgKinds, ", "))
	register.Flags().StringVar(&name, "name", "", "display name of a practitioner or organization (a patient has none on the ledger)")

	var subject, licence, specialty, jurisdiction, expires string
	var scopes []string
	attest := &cobra.Command{
		Use: "attest", Short: "Attest a practitioner or organization (registrars only)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			subj, err := resolveAddr(f.home, subject)
			if err != nil {
				return err
			}
			exp, err := parseDate(expires)
			if err != nil {
				return err
			}
			_, _, err = f.send(cmd, identity.TypeAttest, func(*keyring.Key, string, uint64) (any, error) {
				return identity.Attest{Subject: subj, Licence: licence, Specialty: specialty, Jurisdiction: jurisdiction, Scopes: scopes, ExpiresAt: exp}, nil
			})
			return err
		},
	}
	attest.Flags().StringVar(&subject, "subject", "", "address or key name of the account to attest")
	attest.Flags().StringVar(&licence, "licence", "", "licence number")
	attest.Flags().StringVar(&specialty, "specialty", "", "specialty")
	attest.Flags().StringVar(&jurisdiction, "jurisdiction", "", "jurisdiction, e.g. NL or US-CA")
	attest.Flags().StringSliceVar(&scopes, "scope", nil, "capability scopes, e.g. emergency")
	attest.Flags().StringVar(&expires, "expires", "8760h", "expiry: YYYY-MM-DD, RFC 3339 or a duration")

	var revokeID uint64
	revoke := &cobra.Command{
		Use: "revoke-attestation", Short: "Revoke an attestation (registrars only)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			subj, err := resolveAddr(f.home, subject)
			if err != nil {
				return err
			}
			_, _, err = f.send(cmd, identity.TypeRevokeAttestation, func(*keyring.Key, string, uint64) (any, error) {
				return identity.RevokeAttestation{Subject: subj, ID: revokeID}, nil
			})
			return err
		},
	}
	revoke.Flags().StringVar(&subject, "subject", "", "address or key name of the attested account")
	revoke.Flags().Uint64Var(&revokeID, "id", 0, "attestation id")

	rotate := &cobra.Command{
		Use: "rotate-key", Short: "Replace the --from account's signing and encryption keys", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			next, err := keyring.Generate(f.from)
			if err != nil {
				return err
			}
			_, old, err := f.send(cmd, identity.TypeRotateKey, func(k *keyring.Key, chainID string, nonce uint64) (any, error) {
				next.Address = k.Address
				proof := ed25519.Sign(next.Signing, identity.RotationStatement(chainID, k.Address, nonce))
				return identity.RotateKey{SigningKey: next.Signing.Public().(ed25519.PublicKey), EncryptionKey: next.Encryption.PublicKey().Bytes(), Proof: proof}, nil
			})
			if err != nil {
				return err
			}
			kr, err := keyring.OpenFile(node.KeyringDir(f.home))
			if err != nil {
				return err
			}
			pass := ""
			if pub, _ := kr.Show(old.Name); !pub.DevUnlocked {
				if pass, err = readPassphrase("passphrase for the new key: "); err != nil {
					return err
				}
			}
			if err := kr.Replace(next, pass); err != nil {
				return fmt.Errorf("rotation committed but the new key was not stored: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s rotated; the old key is archived beside it\n", f.from)
			return nil
		},
	}

	var guardians []string
	setGuardians := &cobra.Command{
		Use: "set-guardians", Short: "Name the accounts that may act for the --from patient", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var gs []tx.Address
			for _, g := range guardians {
				a, err := resolveAddr(f.home, g)
				if err != nil {
					return err
				}
				gs = append(gs, a)
			}
			af := agentFlags{txFlags: *f}
			a, _, err := af.open(cmd.Context())
			if err != nil {
				return err
			}
			if err := a.SetGuardians(cmd.Context(), gs); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "guardians set: %d\n", len(gs))
			return nil
		},
	}
	setGuardians.Flags().StringSliceVar(&guardians, "guardian", nil, "guardian address or key name (repeat; none clears)")

	var action, account string
	propose := &cobra.Command{
		Use: "propose-registrar", Short: "Propose adding or removing a registrar (registrars only)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := resolveAddr(f.home, account)
			if err != nil {
				return err
			}
			_, _, err = f.send(cmd, identity.TypeProposeRegistrar, func(*keyring.Key, string, uint64) (any, error) {
				return identity.ProposeRegistrar{Action: action, Account: a}, nil
			})
			return err
		},
	}
	propose.Flags().StringVar(&action, "action", "add", "add or remove")
	propose.Flags().StringVar(&account, "account", "", "address or key name")

	vote := &cobra.Command{
		Use: "vote-registrar PROPOSAL_ID", Short: "Vote for a registrar proposal (registrars only)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("proposal id must be a number: %w", errUsage)
			}
			_, _, err = f.send(cmd, identity.TypeVoteRegistrar, func(*keyring.Key, string, uint64) (any, error) {
				return identity.VoteRegistrar{Proposal: id}, nil
			})
			return err
		},
	}
	cmd.AddCommand(register, attest, revoke, rotate, setGuardians, propose, vote)
	return cmd
}
