package app_test

import (
	"context"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/snapshot"
	"github.com/medchain/medchain/state"
)

// snapshottingChain runs the determinism scenario on a chain that snapshots every 2 heights.
func snapshottingChain(t *testing.T) (*chain, *snapshot.Store) {
	t.Helper()
	c := newChain(t, newKey("registrar"))
	store, err := snapshot.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c.app.SetSnapshots(app.SnapshotConfig{Store: store, Interval: 2, Keep: 2, ChunkBytes: 512})
	for _, blk := range scenario(t) {
		c.block(blk...)
		c.app.WaitSnapshots() // a height whose snapshot finds the previous one unfinished is skipped
	}
	return c, store
}

// emptyApp is a new node's app, before state sync.
func emptyApp(t *testing.T) *app.App {
	t.Helper()
	st, err := state.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return app.New(chainID, st, nil)
}

// syncFrom offers src's newest snapshot to dst with appHash as the verified app hash and
// applies its chunks through tamper; it returns the last chunk's result.
func syncFrom(t *testing.T, src, dst *app.App, appHash []byte, tamper func(i uint32, chunk []byte) []byte) abci.ResponseApplySnapshotChunk_Result {
	t.Helper()
	ctx := context.Background()
	list, err := src.ListSnapshots(ctx, &abci.RequestListSnapshots{})
	if err != nil || len(list.Snapshots) == 0 {
		t.Fatalf("no snapshots listed (%v)", err)
	}
	snap := list.Snapshots[0]
	offer, err := dst.OfferSnapshot(ctx, &abci.RequestOfferSnapshot{Snapshot: snap, AppHash: appHash})
	if err != nil || offer.Result != abci.ResponseOfferSnapshot_ACCEPT {
		t.Fatalf("offer: %v %v", offer, err)
	}
	var last abci.ResponseApplySnapshotChunk_Result
	for i := uint32(0); i < snap.Chunks; i++ {
		chunk, err := src.LoadSnapshotChunk(ctx, &abci.RequestLoadSnapshotChunk{Height: snap.Height, Format: snap.Format, Chunk: i})
		if err != nil || len(chunk.Chunk) == 0 {
			t.Fatalf("chunk %d: %v", i, err)
		}
		resp, err := dst.ApplySnapshotChunk(ctx, &abci.RequestApplySnapshotChunk{Index: i, Chunk: tamper(i, chunk.Chunk), Sender: "peer-a"})
		if err != nil {
			t.Fatal(err)
		}
		if last = resp.Result; last != abci.ResponseApplySnapshotChunk_ACCEPT {
			return last
		}
	}
	return last
}

// A new node restores a peer's snapshot, reports the snapshot's height and app hash, answers
// queries, and then executes the next blocks to the same app hashes as the chain.
func TestStateSyncRestoresAndContinues(t *testing.T) {
	src, store := snapshottingChain(t)
	list, _ := store.List()
	if len(list) != 2 || list[0].Height != uint64(src.height-src.height%2) || list[0].Chunks < 2 {
		t.Fatalf("snapshots %+v at height %d, want the newest 2 every 2 heights, in several chunks", list, src.height)
	}
	h := int64(list[0].Height)
	dst := emptyApp(t)
	if r := syncFrom(t, src.app, dst, src.hashes[h-1], func(_ uint32, c []byte) []byte { return c }); r != abci.ResponseApplySnapshotChunk_ACCEPT {
		t.Fatalf("restore: %v", r)
	}
	info, _ := dst.Info(context.Background(), &abci.RequestInfo{})
	if info.LastBlockHeight != h || string(info.LastBlockAppHash) != string(src.hashes[h-1]) || info.AppVersion != app.AppVersion {
		t.Fatalf("restored Info %+v, want height %d", info, h)
	}
	reg := newKey("registrar")
	restored := &chain{t: t, app: dst}
	if acc := restored.account(reg.addr); acc.Address != reg.addr || acc.Nonce != src.account(reg.addr).Nonce {
		t.Fatalf("restored registrar account %+v", acc)
	}
	// Replay the blocks after h on the restored app: same hashes as the chain.
	ctx := context.Background()
	for i := h; i < src.height; i++ {
		b := src.log[i]
		resp, err := dst.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Txs: b.txs, Height: i + 1, Time: b.time})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dst.Commit(ctx, &abci.RequestCommit{}); err != nil {
			t.Fatal(err)
		}
		if string(resp.AppHash) != string(src.hashes[i]) {
			t.Fatalf("restored node diverges at height %d", i+1)
		}
	}
}

// A state sync from a lying peer fails safely: a tampered chunk is fetched again from another
// peer and its sender rejected; a snapshot that does not restore to the light-client-verified
// app hash is rejected and leaves the store empty for the next one; an app that already holds
// state refuses to restore over it.
func TestAttackStateSyncLyingPeer(t *testing.T) {
	src, _ := snapshottingChain(t)
	dst := emptyApp(t)
	ctx := context.Background()
	list, _ := src.app.ListSnapshots(ctx, &abci.RequestListSnapshots{})
	h := int64(list.Snapshots[0].Height)

	offer, _ := dst.OfferSnapshot(ctx, &abci.RequestOfferSnapshot{Snapshot: list.Snapshots[0], AppHash: src.hashes[h-1]})
	if offer.Result != abci.ResponseOfferSnapshot_ACCEPT {
		t.Fatalf("offer: %v", offer.Result)
	}
	chunk, _ := src.app.LoadSnapshotChunk(ctx, &abci.RequestLoadSnapshotChunk{Height: uint64(h), Format: snapshot.Format, Chunk: 0})
	bad := append([]byte(nil), chunk.Chunk...)
	bad[len(bad)-1] ^= 0xff
	resp, _ := dst.ApplySnapshotChunk(ctx, &abci.RequestApplySnapshotChunk{Index: 0, Chunk: bad, Sender: "liar"})
	if resp.Result != abci.ResponseApplySnapshotChunk_RETRY || len(resp.RefetchChunks) != 1 || resp.RefetchChunks[0] != 0 ||
		len(resp.RejectSenders) != 1 || resp.RejectSenders[0] != "liar" {
		t.Fatalf("tampered chunk answered %+v, want a refetch from another sender", resp)
	}

	// The same snapshot against another app hash (a peer's fork): rejected at the end.
	wrong := append([]byte(nil), src.hashes[h-1]...)
	wrong[0] ^= 1
	if r := syncFrom(t, src.app, dst, wrong, func(_ uint32, c []byte) []byte { return c }); r != abci.ResponseApplySnapshotChunk_REJECT_SNAPSHOT {
		t.Fatalf("a snapshot not matching the verified app hash: %v", r)
	}
	if info, _ := dst.Info(ctx, &abci.RequestInfo{}); info.LastBlockHeight != 0 {
		t.Fatalf("a rejected snapshot left height %d", info.LastBlockHeight)
	}
	// Unknown formats and empty offers are refused up front.
	other := *list.Snapshots[0]
	other.Format = 2
	if r, _ := dst.OfferSnapshot(ctx, &abci.RequestOfferSnapshot{Snapshot: &other, AppHash: src.hashes[h-1]}); r.Result != abci.ResponseOfferSnapshot_REJECT_FORMAT {
		t.Fatalf("unknown format: %v", r.Result)
	}
	if r, _ := dst.OfferSnapshot(ctx, &abci.RequestOfferSnapshot{Snapshot: list.Snapshots[0]}); r.Result != abci.ResponseOfferSnapshot_REJECT {
		t.Fatalf("offer without a verified app hash: %v", r.Result)
	}
	// A chunk without an offer.
	if r, _ := dst.ApplySnapshotChunk(ctx, &abci.RequestApplySnapshotChunk{Index: 0, Chunk: chunk.Chunk}); r.Result == abci.ResponseApplySnapshotChunk_ACCEPT {
		t.Fatal("a chunk was accepted without an offered snapshot")
	}
	// The honest restore still works after all that.
	if r := syncFrom(t, src.app, dst, src.hashes[h-1], func(_ uint32, c []byte) []byte { return c }); r != abci.ResponseApplySnapshotChunk_ACCEPT {
		t.Fatalf("honest restore after the attacks: %v", r)
	}
	if r, _ := dst.OfferSnapshot(ctx, &abci.RequestOfferSnapshot{Snapshot: list.Snapshots[0], AppHash: src.hashes[h-1]}); r.Result == abci.ResponseOfferSnapshot_ACCEPT {
		t.Fatal("an app holding state accepted a snapshot over it")
	}
}
