package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
)

func devCmd() *cobra.Command {
	var home, apiAddr string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the embedded single-node dev network with demo accounts",
		Long: `Runs one validator with the node API, creating the home with demo accounts on first run and
resuming the same chain afterwards. Keys of the demo accounts are UNENCRYPTED dev keys.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			created, err := node.EnsureDev(home, node.DefaultPorts)
			if err != nil {
				return err
			}
			n, err := node.Start(home, node.Options{APIAddr: apiAddr})
			if err != nil {
				return err
			}
			printDev(cmd.OutOrStdout(), n, created)
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.OutOrStdout(), "stopping...")
			return n.Stop()
		},
	}
	cmd.Flags().StringVar(&home, "home", ".medchain", "directory of the dev node")
	cmd.Flags().StringVar(&apiAddr, "api", "", "node API listen address (default from config/medchain.toml: 127.0.0.1:8080)")
	return cmd
}

func printDev(w io.Writer, n *node.Node, created bool) {
	abs, _ := filepath.Abs(n.Home)
	verb := "resumed"
	if created {
		verb = "created"
	}
	fmt.Fprintf(w, "medchain dev network running (%s chain %q in %s)\n", verb, n.ChainID, abs)
	fmt.Fprintf(w, "  node API      http://%s  (try /v1/status, /v1/health, /metrics)\n", n.APIAddr)
	fmt.Fprintf(w, "  CometBFT RPC  http://%s\n", n.RPCAddr)
	if kr, err := keyring.OpenFile(node.KeyringDir(n.Home)); err == nil {
		if keys, err := kr.List(); err == nil {
			fmt.Fprintf(w, "  demo accounts (UNENCRYPTED dev keys in %s):\n", node.KeyringDir(abs))
			for _, k := range keys {
				fmt.Fprintf(w, "    %-13s %s\n", k.Name, k.Address)
			}
		}
	}
	fmt.Fprintf(w, "Try: %s query attestations doctor --home %s --prove\n", os.Args[0], n.Home)
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
	if f, ok := w.(*os.File); ok {
		f.Sync()
	}
}
