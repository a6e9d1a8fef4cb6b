package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/portal"
	"github.com/medchain/medchain/tx"
)

func devCmd() *cobra.Command {
	var home, apiAddr, agentAddr string
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
			if agentAddr != "" {
				stopAgent, err := startDevAgent(cmd.Context(), cmd.OutOrStdout(), n, agentAddr)
				if err != nil && cmd.Context().Err() != nil { // stopped while the agent was starting
					fmt.Fprintln(cmd.OutOrStdout(), "stopping...")
					return n.Stop()
				}
				if err != nil {
					n.Stop()
					return err
				}
				defer stopAgent()
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Press Ctrl-C to stop.")
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.OutOrStdout(), "stopping...")
			return n.Stop()
		},
	}
	cmd.Flags().StringVar(&home, "home", ".medchain", "directory of the dev node")
	cmd.Flags().StringVar(&agentAddr, "agent", "127.0.0.1:8081", "FHIR facade of the in-process agent (the demo doctor); empty disables it")
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
	fmt.Fprintf(w, "  CometBFT RPC  http://%s (operator interface, loopback)\n", n.RPCAddr)
	if kr, err := keyring.OpenFile(node.KeyringDir(n.Home)); err == nil {
		if keys, err := kr.List(); err == nil {
			fmt.Fprintf(w, "  demo accounts (UNENCRYPTED dev keys in %s):\n", node.KeyringDir(abs))
			for _, k := range keys {
				fmt.Fprintf(w, "    %-13s %s\n", k.Name, k.Address)
			}
		}
	}
	fmt.Fprintf(w, "Try: %s query attestations doctor --home %s --prove\n", os.Args[0], n.Home)
	if f, ok := w.(*os.File); ok {
		f.Sync()
	}
}

// startDevAgent runs the demo doctor's agent in-process: the demo patient's FHIR id is
// "example", and on a fresh network it seeds the demo consent and records.
func startDevAgent(ctx context.Context, w io.Writer, n *node.Node, listen string) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	kr, err := keyring.OpenFile(node.KeyringDir(n.Home))
	if err != nil {
		return nil, err
	}
	c := client.New(n.APIAddr)
	if err := c.WaitReady(ctx); err != nil {
		return nil, err
	}
	signers := map[string]*client.Signer{}
	for _, name := range []string{"patient", "doctor", "hospital", "insurer"} {
		k, err := kr.Get(name, "")
		if err != nil {
			return nil, fmt.Errorf("demo key %s: %w", name, err)
		}
		if signers[name], err = client.NewSigner(ctx, c, k); err != nil {
			return nil, err
		}
	}
	trust, err := client.NewTrust(n.Home, n.APIAddr, n.ChainID)
	if err != nil {
		return nil, err
	}
	custody, err := agent.OpenCustody(n.Home, signers["doctor"].Key, node.NewLogger("info").With("module", "agent"))
	if err != nil {
		trust.Close()
		return nil, err
	}
	serviceKey, err := agent.DemoServiceKey(n.Home)
	if err != nil {
		trust.Close()
		return nil, err
	}
	doctor := agent.New(signers["doctor"], agent.Config{Patients: map[string]tx.Address{"example": signers["patient"].Address()}, Trust: trust, Custody: custody,
		ServiceKeys: map[string][]byte{string(signers["insurer"].Address()) + "/" + agent.DemoPolicy: serviceKey}})
	fmt.Fprintln(w, "  seeding demo consent and records (first run only)...")
	seeded, err := agent.SeedDemo(ctx, agent.DemoSigners{Patient: signers["patient"], Doctor: signers["doctor"], Hospital: signers["hospital"]}, doctor)
	if err != nil {
		trust.Close()
		return nil, fmt.Errorf("seed demo data: %w", err)
	}
	if seeded {
		fmt.Fprintln(w, "  demo data: the patient granted the doctor TREAT access; 4 demo records added")
	}
	insured, err := agent.SeedDemoInsurance(ctx, agent.DemoInsurance{Patient: signers["patient"], Insurer: signers["insurer"], ServiceKey: serviceKey})
	if err != nil {
		trust.Close()
		return nil, fmt.Errorf("seed demo insurance: %w", err)
	}
	if insured {
		fmt.Fprintf(w, "  demo insurance: the patient holds a coverage credential and is enrolled in policy %q; the doctor's agent bills it\n", agent.DemoPolicy)
	}
	web, err := portal.New(portal.Config{Keyring: kr, Node: c, Trust: trust, Dev: true,
		Patients:    map[string]tx.Address{"example": signers["patient"].Address()},
		ServiceKeys: map[string][]byte{string(signers["insurer"].Address()) + "/" + agent.DemoPolicy: serviceKey},
		Log:         node.NewLogger("info").With("module", "portal")})
	if err != nil {
		trust.Close()
		return nil, err
	}
	addr, stopAgent, err := startAgent(doctor, n.Home, listen, agent.FacadeConfig{DevToken: true}, web, node.NewLogger("info").With("module", "agent"))
	if err != nil {
		trust.Close()
		return nil, err
	}
	stop := func() { stopAgent(); trust.Close() }
	fmt.Fprintf(w, "  web portal    http://%s/  (log in as any demo account)\n", addr)
	fmt.Fprintf(w, "  FHIR agent    http://%s/fhir  (the demo doctor; token: %s)\n", addr, agent.TokenFile(n.Home))
	fmt.Fprintf(w, "Try: curl -H \"Authorization: Bearer $(cat %s)\" http://%s/fhir/Patient/example/\\$everything\n", agent.TokenFile(n.Home), addr)
	return stop, nil
}
