// Package node embeds CometBFT in-process with the medchain app: it lays out a node's home
// (CometBFT's standard config/config.toml, config/genesis.json and keys, plus config/medchain.toml),
// initializes single nodes and N-validator testnets, and starts and stops a node with its HTTP API.
package node

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
	cfg "github.com/cometbft/cometbft/config"
	"github.com/spf13/viper"

	"github.com/medchain/medchain/fsutil"
	"github.com/medchain/medchain/tx"
)

// Settings are medchain's own node settings, in <home>/config/medchain.toml.
type Settings struct {
	APIAddr  string `toml:"api_addr"`  // the node HTTP API, e.g. 127.0.0.1:8080
	LogLevel string `toml:"log_level"` // debug, info, warn, error
	// PeerAPIs are other nodes' API URLs to replicate ciphertext from (testnet fills them in).
	PeerAPIs []string `toml:"peer_apis"`
	// KeepStateVersions is how many recent heights stay queryable with proofs (0 = all).
	KeepStateVersions int64 `toml:"keep_state_versions"`
	// KeepBlocks is how many recent blocks to keep (0 = all, the default: a node joining by
	// replay needs them from genesis).
	KeepBlocks int64 `toml:"keep_blocks"`
	// SnapshotInterval makes a state-sync snapshot every so many heights (0 = none).
	SnapshotInterval int64 `toml:"snapshot_interval"`
	// SnapshotKeepRecent is how many snapshots to keep.
	SnapshotKeepRecent int `toml:"snapshot_keep_recent"`
}

// DefaultSettings are used for anything medchain.toml does not set.
func DefaultSettings() Settings {
	return Settings{APIAddr: "127.0.0.1:8080", LogLevel: "info", KeepStateVersions: DefaultKeepStateVersions,
		SnapshotInterval: DefaultSnapshotInterval, SnapshotKeepRecent: 2}
}

// DefaultSnapshotInterval makes a snapshot about every 80 minutes at one block every 5 s.
const DefaultSnapshotInterval = 1000

// DefaultKeepStateVersions keeps about a week of state at one block every 5 s.
const DefaultKeepStateVersions = 100_000

func settingsPath(home string) string { return filepath.Join(home, "config", "medchain.toml") }

// LoadSettings reads medchain.toml, falling back to defaults for a missing file or field.
func LoadSettings(home string) (Settings, error) {
	s := DefaultSettings()
	if _, err := toml.DecodeFile(settingsPath(home), &s); err != nil && !os.IsNotExist(err) {
		return s, fmt.Errorf("read %s: %w", settingsPath(home), err)
	}
	return s, nil
}

// SaveSettings writes medchain.toml.
func SaveSettings(home string, s Settings) error {
	f := new(tomlBuffer)
	if err := toml.NewEncoder(f).Encode(s); err != nil {
		return fmt.Errorf("encode settings: %w", err)
	}
	return fsutil.WriteFileAtomic(settingsPath(home), f.b, 0o644)
}

type tomlBuffer struct{ b []byte }

func (t *tomlBuffer) Write(p []byte) (int, error) { t.b = append(t.b, p...); return len(p), nil }

// lockPath is the file a running node holds locked, with its pid in it, for as long as it runs.
func lockPath(home string) string { return filepath.Join(home, "data", "medchain.lock") }

// lockHome takes the home's lock, so that a second node on the same home stops with a clear
// message instead of a database lock error. The lock goes with the process (also on a crash);
// the returned function releases it earlier and may be called more than once.
func lockHome(home string) (func() error, error) {
	path := lockPath(home)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the lock file of %s: %w", home, err)
	}
	if err := tryLock(f); err != nil {
		b, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, errLocked) {
			pid := strings.TrimSpace(string(b))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("medchain is already running in %s (pid %s); stop it first, or use another --home", home, pid)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	var once sync.Once
	return func() error {
		err := error(nil)
		once.Do(func() { err = f.Close() }) // closing the file releases the lock
		return err
	}, nil
}

// errLocked is tryLock's answer when another process holds the lock.
var errLocked = errors.New("locked by another process")

// Ports are the loopback listen addresses of one node.
type Ports struct {
	P2P, RPC int
	API      int
}

// DefaultPorts are the well-known ports of a single dev node.
var DefaultPorts = Ports{P2P: 26656, RPC: 26657, API: 8080}

// cometConfig is the CometBFT configuration medchain writes for a new home.
func cometConfig(home, moniker string, p Ports) *cfg.Config {
	c := cfg.DefaultConfig()
	c.SetRoot(home)
	c.Moniker = moniker
	c.P2P.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", p.P2P)
	c.RPC.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", p.RPC)
	c.P2P.AddrBookStrict = false // peers are on loopback in dev and testnets
	c.P2P.AllowDuplicateIP = true
	c.P2P.PexReactor = false // permissioned: peers are configured (persistent_peers), not discovered
	// A height starts 250 ms after the last commit (CometBFT's default waits 1 s for late
	// precommits; medchain waited 500 ms), and a peer's gossip routines look for block parts
	// and votes to send every 10 ms instead of 100 ms. With four validators on two cores this
	// took throughput from a median of ~1,500 to ~1,900 tx/s with p99 latency under 2 s; a lone
	// node commits a tx in ~0.25 s instead of ~0.55 s. 100 ms did no better for four validators
	// and left a lone node further behind kvstore's ceiling; every block also costs CPU that
	// reads would use (docs/BENCHMARKS.md). Idle chains still make a block only every
	// CreateEmptyBlocksInterval.
	c.Consensus.TimeoutCommit = 250 * time.Millisecond
	c.Consensus.PeerGossipSleepDuration = 10 * time.Millisecond
	c.Consensus.CreateEmptyBlocksInterval = 5 * time.Second
	// CometBFT's 5 MB/s per peer throttles a 4-validator network whose blocks are a few MB
	// and whose txs are gossiped to every peer (docs/BENCHMARKS.md); nodes are on one LAN or
	// loopback.
	c.P2P.SendRate, c.P2P.RecvRate = 20_480_000, 20_480_000
	c.Mempool.MaxTxBytes = tx.MaxTxBytes
	c.Mempool.Size = 20000
	c.Mempool.CacheSize = 40000
	c.RPC.TimeoutBroadcastTxCommit = 15 * time.Second
	c.Instrumentation.Prometheus = false // medchain serves its own /metrics on the API
	c.LogLevel = "error"
	return c
}

// LoadCometConfig reads <home>/config/config.toml over CometBFT's defaults.
func LoadCometConfig(home string) (*cfg.Config, error) {
	path := filepath.Join(home, "config", "config.toml")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no node in %s (run `medchain node init --home %s` first): %w", home, home, err)
	}
	v := viper.New()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	c := cfg.DefaultConfig()
	if err := v.Unmarshal(c); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	c.SetRoot(home)
	if err := c.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", path, err)
	}
	return c, nil
}

// FreePorts returns three currently free TCP ports on 127.0.0.1 (for tests and benchmarks; another
// process may take one before it is used).
func FreePorts() (Ports, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var got []int
	for i := 0; i < 3; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return Ports{}, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		got = append(got, l.Addr().(*net.TCPAddr).Port)
	}
	return Ports{P2P: got[0], RPC: got[1], API: got[2]}, nil
}
