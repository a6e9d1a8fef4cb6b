package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cometbft/cometbft/abci/example/kvstore"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/tx"
)

// Options control a comparison run.
type Options struct {
	Txs     int    // txs per run
	Workers int    // concurrent submitters
	Window  int    // max txs in flight (below the mempool size)
	Only    string // "medchain" or "kvstore" to run one side (profiling); empty runs both
	Dir     string // scratch directory for the node homes
}

// RegisterTxs returns n signed identity/register txs from n fresh, deterministic accounts.
func RegisterTxs(chainID string, n int) ([][]byte, error) {
	out := make([][]byte, n)
	for i := range out {
		var seed [32]byte
		binary.BigEndian.PutUint64(seed[:], uint64(i))
		seed = sha256.Sum256(seed[:])
		priv := ed25519.NewKeyFromSeed(seed[:])
		addr := tx.AddressOf(priv.Public().(ed25519.PublicKey))
		raw, err := tx.Sign(priv, chainID, addr, 0, identity.TypeRegister, identity.Register{
			Role: identity.RolePatient, EncryptionKey: seed[:]})
		if err != nil {
			return nil, err
		}
		out[i] = raw
	}
	return out, nil
}

// Medchain runs the medchain app (full node: state store, API) on a fresh single-validator home.
func Medchain(ctx context.Context, o Options) (Result, int, error) {
	home := filepath.Join(o.Dir, "medchain")
	ports, err := node.FreePorts()
	if err != nil {
		return Result{}, 0, err
	}
	if _, err := node.EnsureDev(home, ports); err != nil {
		return Result{}, 0, err
	}
	n, err := node.Start(home, node.Options{Log: node.NewLogger("error")})
	if err != nil {
		return Result{}, 0, err
	}
	defer n.Stop()
	txs, err := RegisterTxs(n.ChainID, o.Txs)
	if err != nil {
		return Result{}, 0, err
	}
	size := 0
	for _, t := range txs {
		size += len(t)
	}
	r, err := Run(ctx, "medchain", n.Comet, txs, o.Workers, o.Window, n.App.PreVerify)
	return r, size / len(txs), err
}

// KVStore runs CometBFT's kvstore example app (persistent, goleveldb) under the same CometBFT
// settings, with txs of the given size: the ceiling the consensus engine allows on this machine.
func KVStore(ctx context.Context, o Options, txSize int) (Result, error) {
	home := filepath.Join(o.Dir, "kvstore")
	ports, err := node.FreePorts()
	if err != nil {
		return Result{}, err
	}
	v, err := node.InitHome(home, "kvstore", ports)
	if err != nil {
		return Result{}, err
	}
	if err := node.WriteGenesis("kvstore-bench", time.Now(), []*node.Validator{v}, &app.GenesisState{}); err != nil {
		return Result{}, err
	}
	kv := kvstore.NewPersistentApplication(filepath.Join(home, "data", "kvstore"))
	defer kv.Close()
	n, stop, err := node.StartWithApp(home, kv)
	if err != nil {
		return Result{}, err
	}
	defer stop()
	txs := make([][]byte, o.Txs)
	for i := range txs {
		t := fmt.Appendf(nil, "bench%09d=", i)
		for len(t) < txSize {
			t = append(t, 'v')
		}
		txs[i] = t
	}
	return Run(ctx, "kvstore", n, txs, o.Workers, o.Window, nil)
}

// Compare runs kvstore, then medchain, in scratch homes under o.Dir (created if empty).
func Compare(ctx context.Context, o Options) (med, kv Result, err error) {
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "medchain-bench-"); err != nil {
			return med, kv, err
		}
		defer os.RemoveAll(o.Dir)
	}
	size := 450 // about a registration tx's size, for a kvstore-only run
	if o.Only != "kvstore" {
		if med, size, err = Medchain(ctx, o); err != nil {
			return med, kv, fmt.Errorf("medchain run: %w", err)
		}
	}
	if o.Only == "medchain" {
		return med, kv, nil
	}
	kv, err = KVStore(ctx, o, size)
	if err != nil {
		return med, kv, fmt.Errorf("kvstore run: %w", err)
	}
	return med, kv, nil
}
