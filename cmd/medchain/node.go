package main

import (
	"context"
	"fmt"
	"os"
	"time"

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
	cmd.AddCommand(initCmd, startCmd, joinCmd(), identityCmd())
	return cmd
}

// joinCmd writes the home of a node that joins a running network.
func joinCmd() *cobra.Command {
	var o node.JoinOptions
	var genesisFile string
	var sync node.StateSync
	var stateSync bool
	cmd := &cobra.Command{
		Use:   "join",
		Short: "Write a new home for a node that joins a running network (then ask its registrars to admit it)",
		Long: `Write a new home for a node of a running network: new node and consensus keys, the
network's genesis.json (--genesis, from any member's config/genesis.json) and its peers
(--peers, "nodeID@host:port" as ` + "`medchain node identity`" + ` prints them on a member).
Started, the node follows the chain as a full node. It becomes a member (a node account that
replicates ciphertext and commits its fetch log; a validator with --power > 0) when two thirds
of the registrars approve its admission:

  medchain network propose --action add --pub-key KEY --power 10 --name NAME --from registrar
  medchain network vote ID --from another-registrar

With --state-sync the node starts from a snapshot that the network's nodes offer instead of
replaying every block: it restores the state of a recent height in seconds, verified against
the app hash that CometBFT's light client checks from a trusted header (--trust-height and
--trust-hash; without them the latest header of the first --rpc-servers entry is trusted and
printed: compare it with another organization's node). The first --rpc-servers entry is the
light client's primary, the others its witnesses; give at least two organizations' nodes.

The home is written completely or not at all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			gen, err := os.ReadFile(genesisFile)
			if err != nil {
				return fmt.Errorf("read --genesis: %w", err)
			}
			o.Genesis = gen
			if stateSync {
				if sync.TrustHeight == 0 || sync.TrustHash == "" {
					if len(sync.RPCServers) == 0 {
						return fmt.Errorf("--state-sync needs --rpc-servers")
					}
					ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
					sync.TrustHeight, sync.TrustHash, err = node.TrustPoint(ctx, sync.RPCServers[0])
					cancel()
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "trusting height %d hash %s from %s: compare it with another organization's node\n",
						sync.TrustHeight, sync.TrustHash, sync.RPCServers[0])
				}
				o.StateSync = &sync
			}
			v, err := node.Join(o)
			if err != nil {
				return err
			}
			id, err := node.ShowIdentity(v.Home)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s written to %s\nconsensus key %s (account %s)\n"+
				"start it with: medchain node start --home %s\n"+
				"to admit it, a registrar runs: medchain network propose --action add --pub-key %s --power 10 --name %s --from registrar\n",
				id.NodeID, v.Home, id.PubKey, id.Address, v.Home, id.PubKey, o.Moniker)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Home, "home", "", "home directory of the new node (required)")
	cmd.Flags().StringVar(&genesisFile, "genesis", "", "the network's genesis.json (required)")
	cmd.Flags().StringSliceVar(&o.Peers, "peers", nil, "persistent peers, nodeID@host:port (required, comma-separated)")
	cmd.Flags().StringSliceVar(&o.PeerAPIs, "peer-apis", nil, "other nodes' API URLs to replicate ciphertext from (comma-separated)")
	cmd.Flags().StringVar(&o.Moniker, "moniker", hostname(), "node name")
	cmd.Flags().BoolVar(&stateSync, "state-sync", false, "start from a peer's snapshot instead of replaying every block")
	cmd.Flags().StringSliceVar(&sync.RPCServers, "rpc-servers", nil, "CometBFT RPC addresses (host:port) for state sync's light client, at least two (comma-separated)")
	cmd.Flags().Int64Var(&sync.TrustHeight, "trust-height", 0, "state sync: a trusted header's height")
	cmd.Flags().StringVar(&sync.TrustHash, "trust-hash", "", "state sync: that header's hash (hex)")
	cmd.Flags().IntVar(&o.Ports.P2P, "p2p-port", node.DefaultPorts.P2P, "P2P port on 127.0.0.1")
	cmd.Flags().IntVar(&o.Ports.RPC, "rpc-port", node.DefaultPorts.RPC, "CometBFT RPC port on 127.0.0.1")
	cmd.Flags().IntVar(&o.Ports.API, "api-port", node.DefaultPorts.API, "node API port on 127.0.0.1")
	for _, f := range []string{"home", "genesis", "peers"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

// identityCmd prints what other operators need to peer with and admit a node.
func identityCmd() *cobra.Command {
	var home string
	cmd := &cobra.Command{
		Use: "identity", Short: "Show the node's P2P id and address and its consensus key (for peers and admission)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := node.ShowIdentity(home)
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), id)
			return nil
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "node home directory (required)")
	cmd.MarkFlagRequired("home")
	return cmd
}

func testnetCmd() *cobra.Command {
	var n, basePort int
	var out, chainID, passFile string
	var generateKey bool
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
			vals, err := node.Testnet(out, chainID, n, basePort, pass, generateKey)
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
	cmd.Flags().BoolVar(&generateKey, "generate-key", false, "let the validators generate the network key over the ledger when they start (as separate operators do) instead of dealing it into the homes")
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
