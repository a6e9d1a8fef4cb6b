package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cfg "github.com/cometbft/cometbft/config"
	nm "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	"github.com/cometbft/cometbft/rpc/client/local"
	"github.com/cometbft/cometbft/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/fetchlog"
	"github.com/medchain/medchain/notaryindex"
	"github.com/medchain/medchain/snapshot"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Options override a home's settings when starting a node (tests use port 0).
type Options struct {
	APIAddr string // overrides medchain.toml's api_addr when set
	// StallAfter overrides how long without a new block makes /v1/health fail (api.DefaultStallAfter).
	StallAfter time.Duration
	// TxLookupWaits overrides how many tx lookups may wait for a commit at once
	// (api.DefaultTxLookupWaits).
	TxLookupWaits int
	Log           *slog.Logger // defaults to text logs on stderr at the configured level
}

// Node is a running medchain node: CometBFT, the app, its state store and the HTTP API.
type Node struct {
	Home    string
	ChainID string
	App     *app.App
	Comet   *nm.Node
	Client  *local.Local
	APIAddr string // where the HTTP API listens
	RPCAddr string // CometBFT RPC listen address

	store *state.Store
	blobs blob.Store
	http  *http.Server
	log   *slog.Logger

	fetchLog *fetchlog.Log
	audit    *fetchAudit
	key      ed25519.PrivateKey // the validator key: signs the fetch log and replication requests
	replicas *replicator
	// notaryIndex finds the block that first notarized a hash (for the TSA).
	notaryIndex *notaryindex.Index
	keyRounds   *keyRounds // this node's side of the network key's generation and re-sharing rounds
	uploads     *orphans
	unlock      func() error       // releases the home's lock (lockHome)
	cometDBs    *cometDBs          // CometBFT's databases, some of which Stop closes
	stopBG      context.CancelFunc // stops the fetch log shipper and the orphan collector
	bg          sync.WaitGroup
}

// Start starts the node in home. Stop it with Stop.
func Start(home string, opt Options) (_ *Node, err error) {
	conf, err := LoadCometConfig(home)
	if err != nil {
		return nil, err
	}
	unlock, err := lockHome(home) // before any database: one node per home
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	settings, err := LoadSettings(home)
	if err != nil {
		return nil, err
	}
	if opt.APIAddr != "" {
		settings.APIAddr = opt.APIAddr
	}
	log := opt.Log
	if log == nil {
		log = NewLogger(settings.LogLevel)
	}
	genDoc, err := nm.DefaultGenesisDocProviderFunc(conf)()
	if err != nil {
		return nil, fmt.Errorf("read genesis: %w", err)
	}
	if err := checkCoverageKeys(genDoc.AppState); err != nil {
		return nil, err
	}
	store, err := state.Open(filepath.Join(home, "data"))
	if err != nil {
		return nil, err
	}
	application := app.New(genDoc.ChainID, store, log.With("module", "app"))
	application.SetRetention(app.Retention{StateVersions: settings.KeepStateVersions, Blocks: settings.KeepBlocks})
	snaps, err := snapshot.Open(SnapshotDir(home))
	if err != nil {
		store.Close()
		return nil, err
	}
	application.SetSnapshots(app.SnapshotConfig{Store: snaps, Interval: settings.SnapshotInterval, Keep: settings.SnapshotKeepRecent})
	blobs, err := blob.OpenFS(BlobDir(home))
	if err != nil {
		store.Close()
		return nil, err
	}
	application.OnErase(func(hashes [][32]byte) { deleteBlobs(blobs, hashes, log) })
	sweepErased(store, blobs, log)
	key, err := validatorKey(conf)
	if err != nil {
		store.Close()
		return nil, err
	}
	shares, err := newKeyShares(home, tx.AddressOf(key.Public().(ed25519.PublicKey)), log.With("module", "netkey"))
	if err != nil {
		store.Close()
		return nil, err
	}
	releaseAt, err := releaseURL(home)
	if err != nil {
		store.Close()
		return nil, err
	}
	rounds, err := newKeyRounds(store, home, releaseAt, shares, log.With("module", "netkey"))
	if err != nil {
		store.Close()
		return nil, err
	}
	replicas := newReplicator(settings.PeerAPIs, blobs, key, genDoc.ChainID, log.With("module", "replicate"))
	application.OnAnchor(replicas.enqueue)
	application.OnRestore(func(height int64) { // a state sync: fetch the ciphertext of the restored anchors
		if v, err := store.At(height); err == nil {
			go replicas.catchUp(context.Background(), v)
		}
	})
	notaryIndex, err := notaryindex.Open(filepath.Join(home, "data", "notary-index.db"))
	if err != nil {
		store.Close()
		return nil, err
	}
	application.OnNotarized(func(height int64, leaves [][]byte) {
		if err := notaryIndex.Add(height, leaves); err != nil {
			log.Error("notary index", "height", height, "err", err) // CatchUp at the next start repairs it
		}
	})
	if err := catchUpIndex(conf, log); err != nil {
		notaryIndex.Close()
		store.Close()
		return nil, fmt.Errorf("catch up CometBFT's tx index: %w", err)
	}
	dbs := new(cometDBs)
	cmt, err := startComet(conf, genDoc, newClientCreator(application), dbs, log)
	if err != nil {
		notaryIndex.Close()
		store.Close()
		return nil, err
	}
	if err := notaryIndex.CatchUp(application); err != nil { // blocks committed while it was closed, or skipped by a state sync
		log.Error("notary index catch-up", "err", err)
	}
	n := &Node{Home: home, ChainID: genDoc.ChainID, App: application, Comet: cmt, Client: local.New(cmt),
		RPCAddr: strings.TrimPrefix(conf.RPC.ListenAddress, "tcp://"), store: store, log: log, blobs: blobs,
		key: key, replicas: replicas, unlock: unlock, keyRounds: rounds, notaryIndex: notaryIndex, cometDBs: dbs}

	if err := n.startBackground(); err != nil {
		n.stopComet()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(application.Metrics()...)
	tsaKey, tsaCert, err := loadOrCreateTSA(home, n.ChainID, conf.Moniker)
	if err != nil {
		n.stopComet()
		return nil, err
	}
	handler := api.New(api.Config{ChainID: n.ChainID, TSA: &api.TSA{Key: tsaKey, Cert: tsaCert}, Notarized: n.notaryIndex.First, Broadcaster: n.Client, Querier: application, Blobs: blobs,
		Audit: n.audit, Uploads: n.uploads, Replicas: n.replicas, KeyShare: shares.get, Commits: application, StallAfter: opt.StallAfter, TxLookupWaits: opt.TxLookupWaits, PreVerify: application.PreVerify, Metrics: reg, Log: log.With("module", "api")})
	ln, err := net.Listen("tcp", settings.APIAddr)
	if err != nil {
		n.stopComet()
		return nil, fmt.Errorf("listen for the API on %s: %w", settings.APIAddr, err)
	}
	n.APIAddr = ln.Addr().String()
	n.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := n.http.Serve(ln); err != nil && !isClosedConn(err) {
			log.Error("API server stopped", "err", err)
		}
	}()
	log.Info("node started", "chain_id", n.ChainID, "api", "http://"+n.APIAddr, "rpc", conf.RPC.ListenAddress, "home", home)
	return n, nil
}

// startComet creates and starts CometBFT for the home in conf with the app behind clients.
func startComet(conf *cfg.Config, genDoc *types.GenesisDoc, clients proxy.ClientCreator, dbs *cometDBs, log *slog.Logger) (*nm.Node, error) {
	nodeKey, err := p2p.LoadNodeKey(conf.NodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("load node key: %w", err)
	}
	pv := privval.LoadFilePV(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile())
	tracked := &trackedClients{ClientCreator: clients}
	cmt, err := newCometNode(conf, pv, nodeKey, tracked, genDoc, dbs, log)
	if err != nil {
		dbs.abandon(nil, tracked)
		return nil, fmt.Errorf("create consensus node: %w", err)
	}
	if err := cmt.Start(); err != nil {
		dbs.abandon(cmt, tracked)
		if strings.Contains(err.Error(), "address already in use") {
			return nil, fmt.Errorf("start consensus node: %w (is another medchain node running? ports are in %s)", err, filepath.Join(conf.RootDir, "config", "config.toml"))
		}
		return nil, fmt.Errorf("start consensus node: %w", err)
	}
	return cmt, nil
}

// newCometNode is CometBFT's NewNode with its panics turned into errors: its handshake panics
// on a home whose CometBFT data was reset while the app's was kept ("state.AppHash does not
// match AppHash after replay"), which an operator should get as an error that names the cause,
// with the node's resources released, not as a crash.
func newCometNode(conf *cfg.Config, pv *privval.FilePV, nodeKey *p2p.NodeKey, clients proxy.ClientCreator, genDoc *types.GenesisDoc, dbs *cometDBs, log *slog.Logger) (cmt *nm.Node, err error) {
	defer func() {
		if p := recover(); p != nil {
			cmt, err = nil, fmt.Errorf("%v", p)
		}
	}()
	return nm.NewNode(conf, pv, nodeKey, clients,
		func() (*types.GenesisDoc, error) { return genDoc, nil },
		dbs.provide, nm.DefaultMetricsProvider(conf.Instrumentation), cometLogger(conf.LogLevel, log))
}

// StartWithApp runs CometBFT for home with any ABCI application behind CometBFT's standard
// local client (one mutex for all connections) and no medchain API; the benchmark uses it to run
// CometBFT's kvstore under medchain's consensus settings. stop stops it and closes its databases.
func StartWithApp(home string, application abci.Application) (_ *nm.Node, stop func() error, _ error) {
	conf, err := LoadCometConfig(home)
	if err != nil {
		return nil, nil, err
	}
	genDoc, err := nm.DefaultGenesisDocProviderFunc(conf)()
	if err != nil {
		return nil, nil, fmt.Errorf("read genesis: %w", err)
	}
	dbs := new(cometDBs)
	cmt, err := startComet(conf, genDoc, proxy.NewLocalClientCreator(application), dbs, NewLogger("info"))
	if err != nil {
		return nil, nil, err
	}
	return cmt, func() error { return dbs.stop(cmt) }, nil
}

// Stop shuts the API down, stops consensus and closes the state store.
func (n *Node) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), apiGrace)
	defer cancel()
	if err := n.http.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
		// Requests still running, or connections a client opened and never used (an agent
		// that stopped waiting for this holder's share leaves one): close them.
		n.log.Warn("closing API connections still open after the grace period", "grace", apiGrace)
		n.http.Close()
	} else if err != nil {
		return errors.Join(err, n.stopComet())
	}
	return n.stopComet()
}

// apiGrace is how long Stop lets API requests finish.
const apiGrace = 3 * time.Second

// FetchLog is the node's durable log of ciphertext requests (tests close it to check that the
// node then refuses to serve).
func (n *Node) FetchLog() *fetchlog.Log { return n.fetchLog }

func (n *Node) stopComet() error {
	var err error
	if n.stopBG != nil {
		n.stopBG()
		n.bg.Wait()
		err = n.fetchLog.Close()
	}
	err = errors.Join(err, n.cometDBs.stop(n.Comet))
	n.App.WaitSnapshots() // it reads the store
	return errors.Join(err, n.notaryIndex.Close(), n.store.Close(), n.unlock())
}

// NewLogger returns a text slog logger on stderr at level (debug, info, warn, error).
func NewLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// checkCoverageKeys refuses to run a binary whose coverage circuit keys are not the ones genesis
// names: its node would reject the proofs every other node accepts.
func checkCoverageKeys(appState []byte) error {
	var g struct {
		Insurance insurance.Genesis `json:"insurance"`
	}
	if err := json.Unmarshal(appState, &g); err != nil {
		return fmt.Errorf("read genesis app state: %w", err)
	}
	if g.Insurance.CoverageKeys == nil {
		return nil // a chain without coverage proofs
	}
	if err := coverage.CheckCeremony(*g.Insurance.CoverageKeys); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	return nil
}
