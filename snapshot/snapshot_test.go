package snapshot_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/medchain/medchain/snapshot"
	"github.com/medchain/medchain/state"
)

// chain builds a store by committing the same writes every time it is called.
func chain(t *testing.T, keys int) *state.Store {
	t.Helper()
	s, err := state.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for i := 0; i < keys; i++ {
		if err := s.Working().Set(fmt.Appendf(nil, "acct/%06d", i), bytes.Repeat([]byte{byte(i)}, 100+i%50)); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			if _, _, err := s.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	return s
}

func create(t *testing.T, s *state.Store, dir string, chunkBytes int) snapshot.Snapshot {
	t.Helper()
	store, err := snapshot.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := s.LastCommit()
	exp, err := s.Export(v)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close()
	snap, err := store.Create(exp, chunkBytes)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func chunks(t *testing.T, dir string, snap snapshot.Snapshot) [][]byte {
	t.Helper()
	store, err := snapshot.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i := uint32(0); i < snap.Chunks; i++ {
		c, err := store.Chunk(snap.Height, snap.Format, i)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// restore applies chunks to a new store and finishes against wantHash.
func restore(t *testing.T, snap snapshot.Snapshot, chunks [][]byte, wantHash []byte) (*state.Store, error) {
	t.Helper()
	dst, err := state.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	r, err := dst.BeginRestore(int64(snap.Height))
	if err != nil {
		t.Fatal(err)
	}
	rest, err := snapshot.NewRestorer(snap, r.Add)
	if err != nil {
		r.Abort()
		return nil, err
	}
	for i, c := range chunks {
		done, err := rest.Apply(uint32(i), c)
		if err != nil {
			r.Abort()
			return nil, err
		}
		if done != (i == len(chunks)-1) {
			t.Fatalf("chunk %d of %d: done = %v", i, len(chunks), done)
		}
	}
	return dst, r.Finish(wantHash)
}

// Two stores that committed the same writes make byte-identical snapshots, cut into several
// chunks, and a restore from them has the same root and values.
func TestSnapshotIdenticalAndRestorable(t *testing.T) {
	a, b := chain(t, 2000), chain(t, 2000)
	dirA, dirB := t.TempDir(), t.TempDir()
	snapA, snapB := create(t, a, dirA, 32<<10), create(t, b, dirB, 32<<10)
	if snapA.Chunks < 3 {
		t.Fatalf("%d chunks, want several", snapA.Chunks)
	}
	if !bytes.Equal(snapA.Hash, snapB.Hash) || !bytes.Equal(snapA.Metadata, snapB.Metadata) {
		t.Fatal("two stores with the same content made different snapshots")
	}
	ca, cb := chunks(t, dirA, snapA), chunks(t, dirB, snapB)
	for i := range ca {
		if !bytes.Equal(ca[i], cb[i]) {
			t.Fatalf("chunk %d differs between nodes", i)
		}
	}
	_, hash := a.LastCommit()
	dst, err := restore(t, snapA, ca, hash)
	if err != nil {
		t.Fatal(err)
	}
	v, h := dst.LastCommit()
	if v != int64(snapA.Height) || !bytes.Equal(h, hash) {
		t.Fatalf("restored version %d hash %X, want %d %X", v, h, snapA.Height, hash)
	}
	view, _ := dst.At(0)
	if got, _ := view.Get([]byte("acct/001234")); !bytes.Equal(got, bytes.Repeat([]byte{byte(1234 % 256)}, 100+1234%50)) {
		t.Fatalf("restored value %q", got)
	}

	store, _ := snapshot.Open(dirA)
	list, err := store.List()
	if err != nil || len(list) != 1 || list[0].Height != snapA.Height || !bytes.Equal(list[0].Hash, snapA.Hash) {
		t.Fatalf("list = %+v (%v)", list, err)
	}
}

// Snapshots are kept newest first and pruned to the newest ones; what a crash left half-written
// is removed at open and never listed.
func TestSnapshotStorePruneAndCrash(t *testing.T) {
	s := chain(t, 10)
	dir := t.TempDir()
	for i := 0; i < 3; i++ {
		if err := s.Working().Set([]byte("k"), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Commit(); err != nil {
			t.Fatal(err)
		}
		create(t, s, dir, 0)
	}
	if err := os.MkdirAll(filepath.Join(dir, ".tmp-99-123"), 0o700); err != nil {
		t.Fatal(err)
	}
	store, err := snapshot.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-99-123")); !os.IsNotExist(err) {
		t.Fatal("a partial snapshot survived Open")
	}
	if err := store.Prune(2); err != nil {
		t.Fatal(err)
	}
	list, err := store.List()
	v, _ := s.LastCommit()
	if err != nil || len(list) != 2 || list[0].Height != uint64(v) || list[1].Height != uint64(v-1) {
		t.Fatalf("after pruning to 2: %+v (%v)", list, err)
	}
	if _, err := store.Chunk(uint64(v-2), snapshot.Format, 0); err == nil {
		t.Fatal("a pruned snapshot still serves chunks")
	}
	if _, err := store.Chunk(uint64(v), snapshot.Format+1, 0); err == nil {
		t.Fatal("a chunk served for an unknown format")
	}
}

// A peer's snapshot is checked before and during the restore: a chunk that is not the one its
// metadata names is refused (to be fetched from another peer), and a snapshot whose hash,
// metadata, order or content is forged is refused as a whole; a consistent forgery fails the
// root hash, and the store is left empty.
func TestAttackForgedSnapshot(t *testing.T) {
	src := chain(t, 1000)
	dir := t.TempDir()
	snap := create(t, src, dir, 16<<10)
	good := chunks(t, dir, snap)
	_, hash := src.LastCommit()

	tampered := append([][]byte(nil), good...)
	tampered[1] = append([]byte(nil), good[1]...)
	tampered[1][len(tampered[1])/2] ^= 1
	if _, err := restore(t, snap, tampered, hash); !errors.Is(err, snapshot.ErrChunkHash) {
		t.Errorf("tampered chunk: %v", err)
	}

	badHash := snap
	badHash.Hash = append([]byte(nil), snap.Hash...)
	badHash.Hash[0] ^= 1
	if _, err := restore(t, badHash, good, hash); !errors.Is(err, snapshot.ErrBadSnapshot) {
		t.Errorf("hash not of its metadata: %v", err)
	}
	wrongCount := snap
	wrongCount.Chunks++
	if _, err := restore(t, wrongCount, good, hash); !errors.Is(err, snapshot.ErrBadSnapshot) {
		t.Errorf("chunk count not in metadata: %v", err)
	}
	wrongFormat := snap
	wrongFormat.Format = 7
	if _, err := restore(t, wrongFormat, good, hash); !errors.Is(err, snapshot.ErrBadSnapshot) {
		t.Errorf("unknown format: %v", err)
	}
	swapped := append([][]byte{good[1], good[0]}, good[2:]...)
	if _, err := restore(t, snap, swapped, hash); !errors.Is(err, snapshot.ErrChunkHash) {
		t.Errorf("chunks swapped: %v", err)
	}

	// Self-consistent forgeries: the peer makes metadata for chunks of its own.
	forged := func(chunks ...[]byte) snapshot.Snapshot {
		var meta []byte
		for _, c := range chunks {
			sum := sha256.Sum256(c)
			meta = protowire.AppendTag(meta, 1, protowire.BytesType)
			meta = protowire.AppendBytes(meta, sum[:])
		}
		sum := sha256.Sum256(meta)
		return snapshot.Snapshot{Height: snap.Height, Format: snapshot.Format, Chunks: uint32(len(chunks)), Hash: sum[:], Metadata: meta}
	}
	gz := func(raw []byte) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(raw)
		w.Close()
		return b.Bytes()
	}
	bomb := gz(make([]byte, snapshot.MaxChunkBytes+1))
	if _, err := restore(t, forged(bomb), [][]byte{bomb}, hash); !errors.Is(err, snapshot.ErrBadSnapshot) {
		t.Errorf("decompression bomb: %v", err)
	}
	garbage := gz([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0x0f})
	if _, err := restore(t, forged(garbage), [][]byte{garbage}, hash); !errors.Is(err, snapshot.ErrBadSnapshot) {
		t.Errorf("malformed nodes: %v", err)
	}
	notGzip := []byte("plain")
	if _, err := restore(t, forged(notGzip), [][]byte{notGzip}, hash); !errors.Is(err, snapshot.ErrBadSnapshot) {
		t.Errorf("not gzip: %v", err)
	}
	// A well-formed snapshot of another state: every chunk checks out, the root does not.
	other := chain(t, 999)
	otherDir := t.TempDir()
	otherSnap := create(t, other, otherDir, 16<<10)
	otherSnap.Height = snap.Height
	dst, err := restore(t, otherSnap, chunks(t, otherDir, create(t, other, otherDir, 16<<10)), hash)
	if !errors.Is(err, state.ErrRestoreInvalid) {
		t.Fatalf("another state's snapshot: %v", err)
	}
	if v, _ := dst.LastCommit(); v != 0 {
		t.Fatalf("a rejected snapshot left version %d", v)
	}
}
