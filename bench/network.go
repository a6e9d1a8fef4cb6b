package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
)

// Network runs the medchain load against a fresh network of validators nodes, all in this
// process (separate homes, databases and loopback P2P connections, as in a testnet): every tx
// is gossiped, checked and executed by every node. Submitters spread over the nodes.
func Network(ctx context.Context, o Options, validators int) (Result, error) {
	dir := filepath.Join(o.Dir, fmt.Sprintf("network%d", validators))
	var vals []*node.Validator
	for i := range validators {
		ports, err := node.FreePorts()
		if err != nil {
			return Result{}, err
		}
		v, err := node.InitHome(filepath.Join(dir, fmt.Sprintf("node%d", i)), fmt.Sprintf("node%d", i), ports)
		if err != nil {
			return Result{}, err
		}
		vals = append(vals, v)
	}
	chainID := fmt.Sprintf("bench-%d-validators", validators)
	kr, err := keyring.OpenFile(node.KeyringDir(vals[0].Home))
	if err != nil {
		return Result{}, err
	}
	now := time.Now()
	g, err := node.GenesisAccounts(kr, "", []node.AccountSpec{{KeyName: "registrar", Role: identity.RoleRegistrar, Name: "Bench registrar"}}, now)
	if err != nil {
		return Result{}, err
	}
	if err := node.WriteGenesis(chainID, now, vals, g); err != nil {
		return Result{}, err
	}
	if err := node.SetPeers(vals); err != nil {
		return Result{}, err
	}
	var targets []Target
	var nodes []*node.Node
	defer func() {
		// Disconnect every node before stopping any: CometBFT's consensus reactor may read a
		// stopped node's block store from a peer routine that is still running (a panic on
		// "leveldb: closed"); that routine looks whether its peer is gone only after up to
		// three 2 s sleeps.
		for _, n := range nodes {
			n.Comet.Switch().Stop()
		}
		if len(nodes) > 1 {
			time.Sleep(7 * time.Second)
		}
		for _, n := range nodes {
			n.Stop()
		}
	}()
	for _, v := range vals {
		n, err := node.Start(v.Home, node.Options{Log: node.NewLogger("error")})
		if err != nil {
			return Result{}, err
		}
		nodes = append(nodes, n)
		targets = append(targets, Target{Node: n.Comet, Ingress: n.App.PreVerify})
	}
	if err := waitHeight(ctx, targets, 1); err != nil {
		return Result{}, err
	}
	txs, err := RegisterTxs(chainID, o.Txs)
	if err != nil {
		return Result{}, err
	}
	return RunSpread(ctx, fmt.Sprintf("%d-val", validators), targets, txs, o.Workers, o.Window)
}

// waitHeight waits until every target committed height h (the peers are connected).
func waitHeight(ctx context.Context, targets []Target, h int64) error {
	for _, t := range targets {
		for t.Node.BlockStore().Height() < h {
			select {
			case <-ctx.Done():
				return fmt.Errorf("the network did not reach height %d: %w", h, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// CompareNetwork runs the load on a single medchain node, then on a network of validators
// nodes, in scratch homes under o.Dir (a temp dir if empty).
func CompareNetwork(ctx context.Context, o Options, validators int) (single, network Result, err error) {
	o.Only = "medchain"
	if single, _, err = Compare(ctx, o); err != nil {
		return single, network, err
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "medchain-bench-"); err != nil {
			return single, network, err
		}
		defer os.RemoveAll(o.Dir)
	}
	network, err = Network(ctx, o, validators)
	if err != nil {
		return single, network, fmt.Errorf("%d-validator run: %w", validators, err)
	}
	return single, network, nil
}
