package node

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/tx"
)

// JoinOptions describe a node joining a running network.
type JoinOptions struct {
	Home     string
	Moniker  string
	Ports    Ports
	Genesis  []byte   // the network's genesis.json
	Peers    []string // persistent peers, "nodeID@host:port"
	PeerAPIs []string // other nodes' API URLs, to replicate ciphertext from
	// StateSync, when set, makes the node start from a peer's snapshot.
	StateSync *StateSync
}

// Join writes a new home for a node of an existing network: its own node and consensus keys, the
// network's genesis and its peers. Like InitNode it writes all of the home or nothing. The node
// starts as a full node that follows the chain; it becomes a member (a node account, and with
// power a validator) when the registrars approve a network/propose for its consensus key.
func Join(o JoinOptions) (*Validator, error) {
	gen, err := types.GenesisDocFromJSON(o.Genesis)
	if err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	if len(o.Peers) == 0 {
		return nil, fmt.Errorf("a joining node needs at least one peer (nodeID@host:port)")
	}
	for _, p := range o.Peers {
		if _, err := p2p.NewNetAddressString(p); err != nil {
			return nil, fmt.Errorf("peer %q: %w", p, err)
		}
	}
	var v *Validator
	err = buildDir(o.Home, func(tmp string) error {
		if v, err = InitHome(tmp, o.Moniker, o.Ports); err != nil {
			return err
		}
		if err := gen.SaveAs(filepath.Join(tmp, "config", "genesis.json")); err != nil {
			return fmt.Errorf("write genesis: %w", err)
		}
		c, err := LoadCometConfig(tmp)
		if err != nil {
			return err
		}
		c.P2P.PersistentPeers = strings.Join(o.Peers, ",")
		if o.StateSync != nil {
			if err := o.StateSync.apply(c); err != nil {
				return err
			}
		}
		cfg.WriteConfigFile(filepath.Join(tmp, "config", "config.toml"), c)
		s, err := LoadSettings(tmp)
		if err != nil {
			return err
		}
		s.PeerAPIs = o.PeerAPIs
		return SaveSettings(tmp, s)
	})
	if err != nil {
		return nil, err
	}
	v.Home = o.Home
	return v, nil
}

// Identity is what a node's operator gives the network to be admitted: the node's P2P id and
// its consensus key (base64, as network/propose and genesis.json take it) with the address of
// that key, which is the node's account.
type Identity struct {
	NodeID  string     `json:"node_id"`
	P2P     string     `json:"p2p"` // nodeID@listen address, for other nodes' persistent peers
	PubKey  string     `json:"pub_key"`
	Address tx.Address `json:"address"`
}

// ShowIdentity reads home's node and consensus keys.
func ShowIdentity(home string) (*Identity, error) {
	c, err := LoadCometConfig(home)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(c.PrivValidatorKeyFile()); err != nil {
		return nil, fmt.Errorf("no consensus key in %s: %w", home, err)
	}
	pv := privval.LoadFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
	nk, err := p2p.LoadNodeKey(c.NodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	pub := pv.Key.PubKey.Bytes()
	return &Identity{NodeID: string(nk.ID()), P2P: string(nk.ID()) + "@" + strings.TrimPrefix(c.P2P.ListenAddress, "tcp://"),
		PubKey: base64.StdEncoding.EncodeToString(pub), Address: tx.AddressOf(pub)}, nil
}
