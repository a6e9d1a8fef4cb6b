package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/node"
)

func nodeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Initialize and run a validator or full node"}
	var home, chainID, moniker, passFile string
	var ports node.Ports
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Write a new single-validator home (config, genesis, keys, a registrar account)",
		Long: `Write a new single-validator home: config/config.toml, config/genesis.json,
config/medchain.toml, the node and validator keys, and keyring/ with the key of the
"registrar" account, which genesis makes the network's first registrar.

` + passphraseHelp("the registrar key") + `

The home is written completely or not at all: it is built in a temporary directory beside
--home and moved into place at the end, so after any error nothing is left behind and the
command can simply be run again. --home must not exist or be an empty directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if chainID == "" {
				return fmt.Errorf("--chain-id is required: %w", errUsage)
			}
			pass, err := newPassphraseFrom(passFile)
			if err != nil {
				return err
			}
			v, err := node.InitNode(home, chainID, moniker, ports, pass,
				[]node.AccountSpec{{KeyName: "registrar", Role: identity.RoleRegistrar, Name: "Registrar"}})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "initialized node %s (chain %s) in %s%s\nstart it with: medchain node start --home %s\n",
				v.NodeID, chainID, home, devKeyNote(pass), home)
			return nil
		},
	}
	initCmd.Flags().StringVar(&home, "home", "", "node home directory (required)")
	initCmd.Flags().StringVar(&chainID, "chain-id", "", "chain id (required)")
	initCmd.Flags().StringVar(&moniker, "moniker", hostname(), "node name")
	initCmd.Flags().IntVar(&ports.P2P, "p2p-port", node.DefaultPorts.P2P, "P2P port on 127.0.0.1")
	initCmd.Flags().IntVar(&ports.RPC, "rpc-port", node.DefaultPorts.RPC, "CometBFT RPC port on 127.0.0.1")
	initCmd.Flags().IntVar(&ports.API, "api-port", node.DefaultPorts.API, "node API port on 127.0.0.1")
	initCmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the registrar key's passphrase from this file (else $"+passphraseEnv+" or a prompt)")
	initCmd.MarkFlagRequired("home")

	var startHome, apiAddr string
	startCmd := &cobra.Command{
		Use:   "start",
		Short: "Run the node in --home until interrupted",
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := node.Start(startHome, node.Options{APIAddr: apiAddr})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node running: chain %s, API http://%s, RPC http://%s\n", n.ChainID, n.APIAddr, n.RPCAddr)
			<-cmd.Context().Done()
			return n.Stop()
		},
	}
	startCmd.Flags().StringVar(&startHome, "home", "", "node home directory (required)")
	startCmd.Flags().StringVar(&apiAddr, "api", "", "override the API listen address")
	startCmd.MarkFlagRequired("home")
	cmd.AddCommand(initCmd, startCmd)
	return cmd
}

func testnetCmd() *cobra.Command {
	var n, basePort int
	var out, chainID, passFile string
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Write the homes of an N-validator network on loopback",
		Long: `Write the homes of an N-validator network on loopback: --out/node0 ... node{N-1}, each a
standard home with its own ports, one genesis and persistent peers between all of them. node0's
keyring holds the key of the "registrar" account, the network's first registrar.

` + passphraseHelp("the registrar key") + `

--out is written completely or not at all (built beside it, moved into place at the end), so
after any error nothing is left behind and the command can simply be run again. --out must not
exist or be an empty directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pass, err := newPassphraseFrom(passFile)
			if err != nil {
				return err
			}
			vals, err := node.Testnet(out, chainID, n, basePort, pass)
			if err != nil {
				return err
			}
			for _, v := range vals {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: p2p %d, rpc %d, api %d  ->  medchain node start --home %s\n", v.Name, v.Ports.P2P, v.Ports.RPC, v.Ports.API, v.Home)
			}
			if note := devKeyNote(pass); note != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "registrar key in %s%s\n", node.KeyringDir(vals[0].Home), note)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&n, "validators", 4, "number of validators")
	cmd.Flags().StringVar(&out, "out", "testnet", "output directory")
	cmd.Flags().StringVar(&chainID, "chain-id", "medchain-testnet", "chain id")
	cmd.Flags().IntVar(&basePort, "base-port", 36656, "first port; node i uses base+10i (p2p), +1 (rpc), +2 (api)")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the registrar key's passphrase from this file (else $"+passphraseEnv+" or a prompt)")
	return cmd
}

// devKeyNote marks output about a key created with an empty passphrase.
func devKeyNote(pass string) string {
	if pass == "" {
		return "  (registrar key UNENCRYPTED: empty passphrase)"
	}
	return ""
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "medchain-node"
	}
	return h
}
