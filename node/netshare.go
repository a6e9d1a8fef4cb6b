package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/fsutil"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/tx"
)

// NetworkShareFile is where a validator keeps its share of the network's threshold key. Like
// priv_validator_key.json it never leaves the home (mode 0600).
func NetworkShareFile(home string) string {
	return filepath.Join(home, "config", "network_key_share.json")
}

// dealNetworkKey is the dealer of a network whose validators' homes one command makes (dev,
// testnet, the benchmarks): it generates the threshold key, writes each validator its share and
// puts the public key and the holders into the genesis state. A network of separate operators
// needs distributed key generation instead (docs/OPERATIONS.md).
func dealNetworkKey(vals []*Validator, g *app.GenesisState) error {
	pub, shares, err := netkey.Deal(len(vals))
	if err != nil {
		return err
	}
	key := &network.Key{Public: *pub}
	for i, v := range vals {
		api, err := releaseURL(v.Home)
		if err != nil {
			return err
		}
		key.Holders = append(key.Holders, network.Holder{Index: shares[i].Index, Node: tx.AddressOf(v.PubKey), API: api})
		raw, _ := json.Marshal(&shares[i])
		if err := fsutil.WriteFileAtomic(NetworkShareFile(v.Home), raw, 0o600); err != nil {
			return fmt.Errorf("write the network key share of %s: %w", v.Name, err)
		}
	}
	g.Network.Key = key
	return nil
}

// releaseURL is the base URL of a home's API as other nodes' agents reach it.
func releaseURL(home string) (string, error) {
	s, err := LoadSettings(home)
	if err != nil {
		return "", err
	}
	host, port, err := net.SplitHostPort(s.APIAddr)
	if err != nil {
		return "", fmt.Errorf("api_addr %q: %w", s.APIAddr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// LoadNetworkShare reads the home's share of the network key; a home without one (a full node,
// or a validator that holds no share) gets nil.
func LoadNetworkShare(home string) (*netkey.Share, error) {
	raw, err := os.ReadFile(NetworkShareFile(home))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the network key share: %w", err)
	}
	var s netkey.Share
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("decode %s: %w", NetworkShareFile(home), err)
	}
	return &s, nil
}
