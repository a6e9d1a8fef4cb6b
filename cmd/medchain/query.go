package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
)

func queryCmd() *cobra.Command {
	var home, nodeURL string
	var prove bool
	cmd := &cobra.Command{Use: "query", Aliases: []string{"q"}, Short: "Query chain state (with --prove, verified against a signed header)"}
	cmd.PersistentFlags().StringVar(&home, "home", ".medchain", "home whose keyring resolves key names and whose trust anchor verifies --prove")
	cmd.PersistentFlags().StringVar(&nodeURL, "node", "http://127.0.0.1:8080", nodeHelp)
	cmd.PersistentFlags().BoolVar(&prove, "prove", false, "verify a Merkle proof against the AppHash of a block header that the light client verifies (headers from the --node APIs: the first is the primary, the others its witnesses)")

	ctxOf := func(cmd *cobra.Command) (context.Context, context.CancelFunc) {
		return context.WithTimeout(cmd.Context(), 30*time.Second)
	}
	verify := func(cmd *cobra.Command, ctx context.Context, c *client.Client, p *api.Proven) error {
		if !prove {
			return nil
		}
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		v, err := client.VerifyProven(ctx, home, nodeURL, st.ChainID, p, 15*time.Second)
		if err != nil {
			return fmt.Errorf("PROOF NOT VERIFIED: %w", err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "proof verified: state at height %d is committed by header %d (app hash %X, signed by >2/3 of %d validators)\n",
			v.Height, v.HeaderAt, v.AppHash, v.Validators)
		return nil
	}

	account := &cobra.Command{
		Use: "account ADDRESS|KEY", Short: "Show an account", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := ctxOf(cmd)
			defer cancel()
			a, err := resolveAddr(home, args[0])
			if err != nil {
				return err
			}
			c := client.New(nodeURL)
			acc, p, err := c.Account(ctx, a, prove)
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), acc)
			return verify(cmd, ctx, c, p)
		},
	}
	attestations := &cobra.Command{
		Use: "attestations ADDRESS|KEY", Short: "List an account's attestations", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := ctxOf(cmd)
			defer cancel()
			a, err := resolveAddr(home, args[0])
			if err != nil {
				return err
			}
			c := client.New(nodeURL)
			list, proofs, err := c.Attestations(ctx, a, prove)
			if err != nil {
				return err
			}
			now := time.Now()
			for i, att := range list {
				state := "active"
				switch {
				case att.Revoked:
					state = "REVOKED"
				case !att.ActiveAt(now):
					state = "EXPIRED"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "#%d %s licence=%s specialty=%q jurisdiction=%s scopes=%v expires=%s issuer=%s\n",
					att.ID, state, att.Licence, att.Specialty, att.Jurisdiction, att.Scopes, att.ExpiresAt.Format(time.DateOnly), att.Issuer)
				if err := verify(cmd, ctx, c, &proofs[i]); err != nil {
					return err
				}
			}
			if len(list) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no attestations")
			}
			return nil
		},
	}
	registrars := &cobra.Command{
		Use: "registrars", Short: "List the registrar set", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := ctxOf(cmd)
			defer cancel()
			list, err := client.New(nodeURL).Registrars(ctx)
			if err != nil {
				return err
			}
			for _, r := range list {
				fmt.Fprintln(cmd.OutOrStdout(), r)
			}
			return nil
		},
	}
	proposal := &cobra.Command{
		Use: "proposal ID", Short: "Show a registrar proposal", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := ctxOf(cmd)
			defer cancel()
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("proposal id must be a number: %w", errUsage)
			}
			p, err := client.New(nodeURL).Proposal(ctx, id)
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), p)
			return nil
		},
	}
	txq := &cobra.Command{
		Use: "tx HASH", Short: "Show a committed transaction's result", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := ctxOf(cmd)
			defer cancel()
			r, err := client.New(nodeURL).Tx(ctx, args[0])
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), r)
			return nil
		},
	}
	cmd.AddCommand(account, attestations, registrars, proposal, txq)
	return cmd
}

func statusCmd() *cobra.Command {
	var nodeURL string
	cmd := &cobra.Command{
		Use: "status", Short: "Show the node's status", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			st, err := client.New(nodeURL).Status(ctx)
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().StringVar(&nodeURL, "node", "http://127.0.0.1:8080", nodeHelp)
	return cmd
}

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
