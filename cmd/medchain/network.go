package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/keyring"
)

// networkCmd is the consortium's membership: propose and approve nodes joining, leaving,
// changing power or rotating their consensus key, and list the members.
func networkCmd() *cobra.Command {
	f := &txFlags{}
	cmd := &cobra.Command{Use: "network", Short: "Network membership: admit, remove, re-weight or re-key nodes by registrar vote"}
	f.register(cmd)

	var action, pubKey, newPubKey, name string
	var power int64
	propose := &cobra.Command{
		Use:   "propose",
		Short: "Propose a membership change (registrars only; executes at two thirds of the registrars)",
		Long: `Propose a membership change; your vote counts. Actions:
  add     --pub-key KEY --power P --name NAME   admit a node (power 0: a full node that does not vote)
  remove  --pub-key KEY                        a node leaves (its account is retired)
  power   --pub-key KEY --power P              change a node's voting power
  rotate  --pub-key OLD --new-pub-key NEW      replace a node's consensus key
Keys are base64 Ed25519 consensus keys, as ` + "`medchain node identity`" + ` prints them. A validator
change takes effect two blocks after the vote that carries it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m := network.Propose{Action: action, Power: power, Name: name}
			var err error
			if m.PubKey, err = consensusKey("--pub-key", pubKey); err != nil {
				return err
			}
			if newPubKey != "" {
				if m.NewPubKey, err = consensusKey("--new-pub-key", newPubKey); err != nil {
					return err
				}
			}
			_, _, err = f.send(cmd, network.TypePropose, func(*keyring.Key, string, uint64) (any, error) { return m, nil })
			return err
		},
	}
	propose.Flags().StringVar(&action, "action", "", "add, remove, power or rotate (required)")
	propose.Flags().StringVar(&pubKey, "pub-key", "", "the node's consensus key, base64 (required)")
	propose.Flags().StringVar(&newPubKey, "new-pub-key", "", "rotate: the new consensus key, base64")
	propose.Flags().Int64Var(&power, "power", 0, "voting power (add, power); 0 = full node")
	propose.Flags().StringVar(&name, "name", "", "add: the node's name")
	propose.MarkFlagRequired("action")
	propose.MarkFlagRequired("pub-key")

	vote := &cobra.Command{
		Use: "vote PROPOSAL_ID", Short: "Approve a membership proposal (registrars only)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("proposal id must be a number: %w", errUsage)
			}
			_, _, err = f.send(cmd, network.TypeVote, func(*keyring.Key, string, uint64) (any, error) {
				return network.Vote{Proposal: id}, nil
			})
			return err
		},
	}
	members := &cobra.Command{
		Use: "members", Short: "List the member nodes and their voting power", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			list, err := client.New(f.nodeURL).Members(ctx)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ADDRESS\tPOWER\tNAME\tSINCE\tPUB_KEY")
			for _, m := range list {
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\n", m.Address, m.Power, m.Name, m.AddedHeight, network.KeyString(m.PubKey))
			}
			return w.Flush()
		},
	}
	proposal := &cobra.Command{
		Use: "proposal ID", Short: "Show a membership proposal", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("proposal id must be a number: %w", errUsage)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			p, err := client.New(f.nodeURL).NetworkProposal(ctx, id)
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), p)
			return nil
		},
	}
	key := &cobra.Command{
		Use: "key", Short: "Show the network key (epoch, threshold, holders) and its generation or re-sharing round", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			c := client.New(f.nodeURL)
			out := cmd.OutOrStdout()
			var k network.Key
			switch p, err := c.State(ctx, network.KeyStateKey(), false); {
			case err != nil:
				return err
			case len(p.Value) == 0:
				fmt.Fprintln(out, "no network key yet")
			default:
				if err := json.Unmarshal(p.Value, &k); err != nil {
					return fmt.Errorf("decode the network key: %w", err)
				}
				fmt.Fprintf(out, "epoch %d, threshold %d of %d holders, since height %d\n", k.Epoch, k.Threshold, len(k.Holders), k.Height)
				w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "INDEX\tNODE\tRELEASES_AT")
				for _, h := range k.Holders {
					fmt.Fprintf(w, "%d\t%s\t%s\n", h.Index, h.Node, h.API)
				}
				if err := w.Flush(); err != nil {
					return err
				}
			}
			p, err := c.State(ctx, network.RoundKey(), false)
			if err != nil || len(p.Value) == 0 {
				return err
			}
			var r network.Round
			if err := json.Unmarshal(p.Value, &r); err != nil {
				return fmt.Errorf("decode the key round: %w", err)
			}
			switch r.Status {
			case network.RoundOpen:
				fmt.Fprintf(out, "round %d (%s) in its %s phase: %d of %d messages, until height %d\n", r.Epoch, roundKind(&r), r.Phase,
					r.Posted, r.Expected(), r.Deadline)
			case network.RoundFailed:
				fmt.Fprintf(out, "round %d (%s) failed at height %d: %s\n", r.Epoch, roundKind(&r), r.Closed, r.Reason)
			}
			return nil
		},
	}
	cmd.AddCommand(propose, vote, members, proposal, key)
	return cmd
}

func roundKind(r *network.Round) string {
	if r.Reshare {
		return "re-sharing"
	}
	return "generation"
}

// consensusKey decodes a base64 Ed25519 consensus key.
func consensusKey(flag, s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("%s must be a base64 32-byte Ed25519 key (see `medchain node identity`): %w", flag, errUsage)
	}
	return k, nil
}
