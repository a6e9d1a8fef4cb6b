package app

import (
	"context"
	"errors"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/snapshot"
	"github.com/medchain/medchain/state"
)

// State sync. Every Interval heights the app exports the version it just committed into a
// snapshot (in the background, from an immutable version that pruning leaves alone meanwhile)
// and keeps the newest Keep. CometBFT lists them to peers and serves their chunks; a new node
// offered one imports its chunks into an empty store and accepts it only if the imported root
// is the app hash CometBFT's light client verified for that height.

// SnapshotConfig says when a node makes snapshots.
type SnapshotConfig struct {
	Store      *snapshot.Store
	Interval   int64 // make one every Interval heights; 0 makes none (the node can still restore)
	Keep       int   // how many to keep (at least 1)
	ChunkBytes int   // where chunks are cut (snapshot.ChunkBytes if 0)
}

type snapshots struct {
	conf SnapshotConfig
	busy sync.Mutex // held while one is being made; a height that finds it held is skipped
	wg   sync.WaitGroup

	// restoring: the snapshot connection's state sync (OfferSnapshot, ApplySnapshotChunk).
	restore  *state.Restore
	restorer *snapshot.Restorer
	appHash  []byte
}

// SetSnapshots configures snapshots. Set it before starting.
func (a *App) SetSnapshots(c SnapshotConfig) {
	if c.Keep < 1 {
		c.Keep = 1
	}
	a.snaps.conf = c
}

// OnRestore registers fn to run after a state sync restored the state at height, so that the
// node fetches the ciphertext the restored anchors name. Set it before starting.
func (a *App) OnRestore(fn func(height int64)) { a.onRestore = fn }

// WaitSnapshots waits for a snapshot being made (tests, and a node stopping).
func (a *App) WaitSnapshots() { a.snaps.wg.Wait() }

// maybeSnapshot starts a snapshot of height if one is due; it never blocks the commit.
func (a *App) maybeSnapshot(height int64) {
	c := a.snaps.conf
	if c.Store == nil || c.Interval <= 0 || height%c.Interval != 0 {
		return
	}
	if !a.snaps.busy.TryLock() {
		a.log.Warn("skipping a snapshot: the previous one is still being made", "height", height)
		return
	}
	exp, err := a.store.Export(height) // now, so that the version is not pruned before it is read
	if err != nil {
		a.snaps.busy.Unlock()
		a.log.Error("snapshot", "height", height, "err", err)
		return
	}
	a.snaps.wg.Add(1)
	go func() {
		defer a.snaps.wg.Done()
		defer a.snaps.busy.Unlock()
		defer exp.Close()
		snap, err := c.Store.Create(exp, c.ChunkBytes)
		if err != nil {
			a.log.Error("snapshot", "height", height, "err", err)
			return
		}
		if err := c.Store.Prune(c.Keep); err != nil {
			a.log.Error("prune snapshots", "err", err)
		}
		a.log.Info("snapshot made", "height", height, "chunks", snap.Chunks)
	}()
}

// ListSnapshots lists the snapshots this node holds, newest first.
func (a *App) ListSnapshots(context.Context, *abci.RequestListSnapshots) (*abci.ResponseListSnapshots, error) {
	resp := &abci.ResponseListSnapshots{}
	if a.snaps.conf.Store == nil {
		return resp, nil
	}
	list, err := a.snaps.conf.Store.List()
	if err != nil {
		a.log.Error("list snapshots", "err", err)
		return resp, nil
	}
	for _, s := range list {
		resp.Snapshots = append(resp.Snapshots, &abci.Snapshot{Height: s.Height, Format: s.Format, Chunks: s.Chunks, Hash: s.Hash, Metadata: s.Metadata})
	}
	return resp, nil
}

// LoadSnapshotChunk serves one chunk of a snapshot this node holds (empty for one it does not).
func (a *App) LoadSnapshotChunk(_ context.Context, req *abci.RequestLoadSnapshotChunk) (*abci.ResponseLoadSnapshotChunk, error) {
	if a.snaps.conf.Store == nil {
		return &abci.ResponseLoadSnapshotChunk{}, nil
	}
	chunk, err := a.snaps.conf.Store.Chunk(req.Height, req.Format, req.Chunk)
	if err != nil {
		a.log.Debug("load snapshot chunk", "err", err)
		return &abci.ResponseLoadSnapshotChunk{}, nil
	}
	return &abci.ResponseLoadSnapshotChunk{Chunk: chunk}, nil
}

// OfferSnapshot starts restoring a peer's snapshot into this node's empty store. AppHash is
// the app hash CometBFT verified with its light client for the snapshot's height.
func (a *App) OfferSnapshot(_ context.Context, req *abci.RequestOfferSnapshot) (*abci.ResponseOfferSnapshot, error) {
	s := &a.snaps
	s.abortRestore()
	if req.Snapshot == nil || len(req.AppHash) == 0 {
		return &abci.ResponseOfferSnapshot{Result: abci.ResponseOfferSnapshot_REJECT}, nil
	}
	snap := snapshot.Snapshot{Height: req.Snapshot.Height, Format: req.Snapshot.Format, Chunks: req.Snapshot.Chunks,
		Hash: req.Snapshot.Hash, Metadata: req.Snapshot.Metadata}
	if snap.Format != snapshot.Format {
		return &abci.ResponseOfferSnapshot{Result: abci.ResponseOfferSnapshot_REJECT_FORMAT}, nil
	}
	if snap.Height == 0 || snap.Height > 1<<62 {
		return &abci.ResponseOfferSnapshot{Result: abci.ResponseOfferSnapshot_REJECT}, nil
	}
	restore, err := a.store.BeginRestore(int64(snap.Height))
	if err != nil {
		a.log.Error("state sync: cannot restore into this store", "err", err)
		return &abci.ResponseOfferSnapshot{Result: abci.ResponseOfferSnapshot_ABORT}, nil
	}
	restorer, err := snapshot.NewRestorer(snap, restore.Add)
	if err != nil {
		restore.Abort()
		a.log.Warn("state sync: snapshot refused", "height", snap.Height, "err", err)
		return &abci.ResponseOfferSnapshot{Result: abci.ResponseOfferSnapshot_REJECT}, nil
	}
	s.restore, s.restorer, s.appHash = restore, restorer, append([]byte(nil), req.AppHash...)
	a.log.Info("state sync: restoring snapshot", "height", snap.Height, "chunks", snap.Chunks)
	return &abci.ResponseOfferSnapshot{Result: abci.ResponseOfferSnapshot_ACCEPT}, nil
}

// ApplySnapshotChunk imports one chunk; after the last it checks the root against the verified
// app hash and makes the restored state the app's.
func (a *App) ApplySnapshotChunk(_ context.Context, req *abci.RequestApplySnapshotChunk) (*abci.ResponseApplySnapshotChunk, error) {
	s := &a.snaps
	if s.restorer == nil {
		return &abci.ResponseApplySnapshotChunk{Result: abci.ResponseApplySnapshotChunk_RETRY_SNAPSHOT}, nil
	}
	done, err := s.restorer.Apply(req.Index, req.Chunk)
	switch {
	case errors.Is(err, snapshot.ErrChunkHash):
		a.log.Warn("state sync: a peer sent a wrong chunk", "chunk", req.Index, "peer", req.Sender)
		resp := &abci.ResponseApplySnapshotChunk{Result: abci.ResponseApplySnapshotChunk_RETRY, RefetchChunks: []uint32{req.Index}}
		if req.Sender != "" {
			resp.RejectSenders = []string{req.Sender}
		}
		return resp, nil
	case err != nil:
		a.log.Warn("state sync: snapshot refused", "err", err)
		s.abortRestore()
		return &abci.ResponseApplySnapshotChunk{Result: abci.ResponseApplySnapshotChunk_REJECT_SNAPSHOT}, nil
	case !done:
		return &abci.ResponseApplySnapshotChunk{Result: abci.ResponseApplySnapshotChunk_ACCEPT}, nil
	}
	restore, appHash := s.restore, s.appHash
	s.restore, s.restorer, s.appHash = nil, nil, nil
	if err := restore.Finish(appHash); errors.Is(err, state.ErrRestoreInvalid) {
		a.log.Warn("state sync: snapshot refused", "err", err)
		return &abci.ResponseApplySnapshotChunk{Result: abci.ResponseApplySnapshotChunk_REJECT_SNAPSHOT}, nil
	} else if err != nil {
		// Not the snapshot's fault (a disk error while switching databases): stop state sync.
		a.log.Error("state sync: cannot install the restored state", "err", err)
		return &abci.ResponseApplySnapshotChunk{Result: abci.ResponseApplySnapshotChunk_ABORT}, nil
	}
	height, _ := a.store.LastCommit()
	if v, err := a.store.At(height); err == nil {
		a.latest.Store(v)
	}
	a.metrics.height.Set(float64(height))
	a.log.Info("state sync: state restored", "height", height)
	if a.onRestore != nil {
		a.onRestore(height)
	}
	return &abci.ResponseApplySnapshotChunk{Result: abci.ResponseApplySnapshotChunk_ACCEPT}, nil
}

func (s *snapshots) abortRestore() {
	if s.restore != nil {
		s.restore.Abort()
	}
	s.restore, s.restorer, s.appHash = nil, nil, nil
}
