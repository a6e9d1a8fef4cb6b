package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/keyring"
)

// Validator is a home's consensus identity, as genesis and peers need it.
type Validator struct {
	Home   string
	Name   string
	PubKey []byte // ed25519 consensus key
	NodeID string
	Ports  Ports
}

// InitHome writes a new home: config.toml, medchain.toml, the node key and the validator key.
// It refuses a home that already has a config.
func InitHome(home, moniker string, ports Ports) (*Validator, error) {
	if _, err := os.Stat(filepath.Join(home, "config", "config.toml")); err == nil {
		return nil, fmt.Errorf("%s already holds a node", home)
	}
	for _, d := range []string{"config", "data"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			return nil, fmt.Errorf("create home: %w", err)
		}
	}
	c := cometConfig(home, moniker, ports)
	cfg.WriteConfigFile(filepath.Join(home, "config", "config.toml"), c)
	s := DefaultSettings()
	s.APIAddr = fmt.Sprintf("127.0.0.1:%d", ports.API)
	if err := SaveSettings(home, s); err != nil {
		return nil, err
	}
	pv := privval.GenFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
	pv.Save()
	nk, err := p2p.LoadOrGenNodeKey(c.NodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	return &Validator{Home: home, Name: moniker, PubKey: pv.Key.PubKey.Bytes(), NodeID: string(nk.ID()), Ports: ports}, nil
}

// InitNode writes a complete single-validator home (config.toml, medchain.toml, the node and
// validator keys, a keyring holding the accounts' keys under passphrase, genesis.json) or nothing:
// the home is built in a temporary sibling directory and renamed into place only when every part
// of it is written, so a failure (or a crash) never leaves a half-written home that blocks the
// next try. home must not exist or be an empty directory.
func InitNode(home, chainID, moniker string, ports Ports, passphrase string, accounts []AccountSpec) (*Validator, error) {
	var v *Validator
	err := buildDir(home, func(tmp string) error {
		var err error
		if v, err = InitHome(tmp, moniker, ports); err != nil {
			return err
		}
		kr, err := keyring.OpenFile(KeyringDir(tmp))
		if err != nil {
			return err
		}
		now := time.Now()
		g, err := GenesisAccounts(kr, passphrase, accounts, now)
		if err != nil {
			return err
		}
		return WriteGenesis(chainID, now, []*Validator{v}, g)
	})
	if err != nil {
		return nil, err
	}
	v.Home = home
	return v, nil
}

// buildDir creates dir by running build on a new temporary sibling directory and renaming it to
// dir once build succeeded and everything in it is synced. On failure it removes the temporary
// directory (and any parent directories it created), so dir stays absent; a crash can leave only
// a ".<name>.init-*" sibling, never a partial dir.
func buildDir(dir string, build func(tmp string) error) (err error) {
	dir = filepath.Clean(dir)
	if err := checkNewDir(dir); err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	var created []string // missing parent directories, deepest first: MkdirAll creates them
	for d := parent; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		created = append(created, d)
	}
	var tmp string
	defer func() {
		if err == nil {
			return
		}
		if tmp != "" {
			os.RemoveAll(tmp)
		}
		for _, d := range created {
			os.Remove(d) // only if still empty
		}
	}()
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	if tmp, err = os.MkdirTemp(parent, "."+filepath.Base(dir)+".init-"); err != nil {
		return fmt.Errorf("create a temporary directory beside %s: %w", dir, err)
	}
	if err := build(tmp); err != nil {
		return err
	}
	if err := syncTree(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// dir may be an empty directory that this platform does not rename over.
		if os.Remove(dir) != nil {
			return fmt.Errorf("move the new directory into %s: %w", dir, err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("move the new directory into %s: %w", dir, err)
		}
	}
	syncDir(parent)
	return nil
}

// checkNewDir refuses a dir that exists and is not an empty directory, explaining what is there.
func checkNewDir(dir string) error {
	fi, err := os.Stat(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "config", "config.toml")); err == nil {
		if _, err := os.Stat(filepath.Join(dir, "config", "genesis.json")); err != nil {
			return fmt.Errorf("%s holds an incomplete node (no config/genesis.json), left by an earlier failed init; remove it and run init again", dir)
		}
		return fmt.Errorf("%s already holds a node", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty; choose a new or empty directory (or remove it)", dir)
	}
	return nil
}

// syncTree fsyncs every file and directory under root, so that the rename publishing root never
// points at files a crash could still lose.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			syncDir(path)
			return nil
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("sync %s: %w", path, err)
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sync %s: %w", path, err)
		}
		return nil
	})
}

// syncDir fsyncs a directory's entries where the platform allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// WriteGenesis writes the same genesis.json, with these validators and app state, into every
// validator's home. Unless state already has a network key, or asks the validators to generate
// one (Network.Generate), it deals one among the validators (their shares go into their homes).
func WriteGenesis(chainID string, genesisTime time.Time, vals []*Validator, state *app.GenesisState) error {
	if state.Network.Key == nil && !state.Network.Generate {
		if err := dealNetworkKey(vals, state); err != nil {
			return fmt.Errorf("deal the network key: %w", err)
		}
	}
	appState, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("encode app state: %w", err)
	}
	doc := &types.GenesisDoc{ChainID: chainID, GenesisTime: genesisTime.UTC(), ConsensusParams: types.DefaultConsensusParams(),
		AppState: appState}
	for _, v := range vals {
		pv := privval.LoadFilePV(filepath.Join(v.Home, "config", "priv_validator_key.json"), filepath.Join(v.Home, "data", "priv_validator_state.json"))
		doc.Validators = append(doc.Validators, types.GenesisValidator{Address: pv.Key.PubKey.Address(), PubKey: pv.Key.PubKey, Power: 10, Name: v.Name})
	}
	if err := doc.ValidateAndComplete(); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	for _, v := range vals {
		if err := doc.SaveAs(filepath.Join(v.Home, "config", "genesis.json")); err != nil {
			return fmt.Errorf("write genesis: %w", err)
		}
	}
	return nil
}

// SetPeers writes each home's persistent_peers to every other validator.
func SetPeers(vals []*Validator) error {
	for _, v := range vals {
		c, err := LoadCometConfig(v.Home)
		if err != nil {
			return err
		}
		peers := ""
		var apis []string
		for _, o := range vals {
			if o == v {
				continue
			}
			if peers != "" {
				peers += ","
			}
			peers += fmt.Sprintf("%s@127.0.0.1:%d", o.NodeID, o.Ports.P2P)
			apis = append(apis, fmt.Sprintf("http://127.0.0.1:%d", o.Ports.API))
		}
		c.P2P.PersistentPeers = peers
		cfg.WriteConfigFile(filepath.Join(v.Home, "config", "config.toml"), c)
		s, err := LoadSettings(v.Home)
		if err != nil {
			return err
		}
		s.PeerAPIs = apis // replicate ciphertext from the other nodes
		if err := SaveSettings(v.Home, s); err != nil {
			return err
		}
	}
	return nil
}

// AccountSpec names a genesis account to create in a keyring.
type AccountSpec struct {
	KeyName string
	Role    identity.Role
	OrgKind string
	Name    string
	Attest  *identity.Attestation // attested by the first registrar if set (subject, issuer filled in)
}

// GenesisAccounts creates each account's key in kr (under passphrase; empty means a marked dev
// key, or reuses an existing key of that name) and returns the identity genesis with every
// registrar-role account in the registrar set.
func GenesisAccounts(kr keyring.Keyring, passphrase string, specs []AccountSpec, now time.Time) (*app.GenesisState, error) {
	keys := coverage.CeremonyHashes()
	g := &app.GenesisState{Insurance: insurance.Genesis{CoverageKeys: &keys}}
	for _, s := range specs {
		k, err := kr.Get(s.KeyName, passphrase)
		if err != nil {
			if k, err = kr.Create(s.KeyName, passphrase); err != nil {
				return nil, fmt.Errorf("key %s: %w", s.KeyName, err)
			}
		}
		pub := k.Public()
		g.Identity.Accounts = append(g.Identity.Accounts, identity.Account{Address: k.Address, Role: s.Role,
			OrgKind: s.OrgKind, Name: s.Name, SigningKey: pub.SigningKey, EncryptionKey: pub.EncryptionKey})
		if s.Role == identity.RoleRegistrar {
			g.Identity.Registrars = append(g.Identity.Registrars, k.Address)
		}
		if s.Attest != nil {
			a := *s.Attest
			a.Subject, a.IssuedAt = k.Address, now.UTC()
			g.Identity.Attestations = append(g.Identity.Attestations, a)
		}
	}
	if len(g.Identity.Registrars) == 0 {
		return nil, fmt.Errorf("genesis needs at least one registrar account")
	}
	for i := range g.Identity.Attestations {
		g.Identity.Attestations[i].Issuer = g.Identity.Registrars[0]
	}
	return g, nil
}

// KeyringDir is where a home keeps its account keys.
func KeyringDir(home string) string { return filepath.Join(home, "keyring") }

// Testnet writes n validator homes under out (node0..node{n-1}) with distinct loopback ports
// starting at basePort, one genesis, and persistent peers between all of them. A registrar key
// is created in node0's keyring (under passphrase). The network key is dealt into the homes, or,
// with generateKey, left for the validators to generate over the ledger once they run, as a
// network of separate operators does. Like InitNode it writes all of out or nothing: out must
// not exist or be an empty directory.
func Testnet(out, chainID string, n, basePort int, passphrase string, generateKey bool) ([]*Validator, error) {
	if n < 1 || n > 64 {
		return nil, fmt.Errorf("validators must be 1..64, got %d", n)
	}
	var vals []*Validator
	err := buildDir(out, func(tmp string) error {
		for i := 0; i < n; i++ {
			p := Ports{P2P: basePort + 10*i, RPC: basePort + 10*i + 1, API: basePort + 10*i + 2}
			v, err := InitHome(filepath.Join(tmp, fmt.Sprintf("node%d", i)), fmt.Sprintf("node%d", i), p)
			if err != nil {
				return err
			}
			vals = append(vals, v)
		}
		kr, err := keyring.OpenFile(KeyringDir(vals[0].Home))
		if err != nil {
			return err
		}
		now := time.Now()
		g, err := GenesisAccounts(kr, passphrase, []AccountSpec{{KeyName: "registrar", Role: identity.RoleRegistrar, Name: "Network registrar"}}, now)
		if err != nil {
			return err
		}
		g.Network.Generate = generateKey
		if err := WriteGenesis(chainID, now, vals, g); err != nil {
			return err
		}
		return SetPeers(vals)
	})
	if err != nil {
		return nil, err
	}
	for _, v := range vals {
		v.Home = filepath.Join(out, v.Name)
	}
	return vals, nil
}
