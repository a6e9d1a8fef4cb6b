package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/client"
)

// lightCmd manages the trust anchor that `query --prove` verifies headers from.
func lightCmd() *cobra.Command {
	var home string
	cmd := &cobra.Command{Use: "light", Short: "Manage the light client's trust anchor for verified reads"}
	cmd.PersistentFlags().StringVar(&home, "home", ".medchain", "home that keeps the trust anchor (light/anchor.json)")

	var chainID, hash string
	var height int64
	trust := &cobra.Command{
		Use:   "trust",
		Short: "Pin a trusted header (height and hash obtained out of band from your network's operators)",
		Long: `Pin a trusted header. Verified reads (query --prove) accept only headers that CometBFT's
light client verifies from this anchor. Without one, the first verified read pins the header at
the chain's initial height, checked against the validators in HOME/config/genesis.json.
Pinning replaces the old anchor and the light blocks verified from it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a := client.Anchor{ChainID: chainID, Height: height, Hash: hash}
			if err := client.SaveAnchor(home, a); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "trusting %s at height %d (header %s), kept in %s\n", chainID, height, hash, client.AnchorPath(home))
			return nil
		},
	}
	trust.Flags().StringVar(&chainID, "chain-id", "", "chain id of the network (required)")
	trust.Flags().Int64Var(&height, "height", 0, "height of the trusted header (required)")
	trust.Flags().StringVar(&hash, "hash", "", "hex hash of the trusted header (required)")
	for _, f := range []string{"chain-id", "height", "hash"} {
		_ = trust.MarkFlagRequired(f)
	}

	show := &cobra.Command{
		Use: "show", Short: "Show the pinned trust anchor", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, ok, err := client.LoadAnchor(home)
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintf(cmd.OutOrStdout(), "no trust anchor in %s: the first verified read pins one from the genesis validators\n", client.AnchorPath(home))
				return nil
			}
			printJSON(cmd.OutOrStdout(), a)
			return nil
		},
	}
	cmd.AddCommand(trust, show)
	return cmd
}
