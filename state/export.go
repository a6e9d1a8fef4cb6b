package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	dbm "github.com/cosmos/cosmos-db"
	"github.com/cosmos/iavl"
	iavldb "github.com/cosmos/iavl/db"

	"github.com/medchain/medchain/fsutil"
)

// Export and restore. A committed version leaves the store as IAVL's export stream: every node
// of the tree, depth-first post-order, with its height and version. The stream is a function of
// the version's content only, so every node exports the same stream at the same height, and a
// new node that imports it rebuilds a tree with the same root hash (state sync).

// Node is one node of an exported tree: a leaf (Height 0) has a key and value, an inner node
// only a key.
type Node struct {
	Key     []byte
	Value   []byte
	Version int64
	Height  int8
}

// Exporter streams one committed version. While it is open the version cannot be pruned.
type Exporter struct {
	exp  *iavl.Exporter
	tree *iavl.ImmutableTree
}

// Export opens an export of a committed version. Close it when done.
func (s *Store) Export(version int64) (*Exporter, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, err := s.tree.GetImmutable(version)
	if err != nil {
		return nil, fmt.Errorf("export state version %d: %w", version, err)
	}
	exp, err := t.Export()
	if err != nil {
		return nil, fmt.Errorf("export state version %d: %w", version, err)
	}
	return &Exporter{exp: exp, tree: t}, nil
}

// Version is the exported version.
func (e *Exporter) Version() int64 { return e.tree.Version() }

// Hash is the exported version's root hash.
func (e *Exporter) Hash() []byte { return e.tree.Hash() }

// Next returns the next node, or io.EOF after the last one.
func (e *Exporter) Next() (*Node, error) {
	n, err := e.exp.Next()
	if errors.Is(err, iavl.ErrorExportDone) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("export state: %w", err)
	}
	return &Node{Key: n.Key, Value: n.Value, Version: n.Version, Height: n.Height}, nil
}

// Close ends the export; the version may be pruned again.
func (e *Exporter) Close() { e.exp.Close() }

// Restore imports an exported version into a new database beside the store's own. Nothing
// replaces the store's state until Finish has checked the imported root hash; a crash or an
// Abort before that leaves the store as it was, and the partial import is deleted on the next
// Open.
type Restore struct {
	s       *Store
	db      dbm.DB
	tree    *iavl.MutableTree
	imp     *iavl.Importer
	version int64
}

// Restore names, in a file store's directory.
const (
	restoreDBName = "app.restore" // the database being imported (restoreDBName.db)
	restoreDone   = "app.restore.done"
)

// BeginRestore starts importing version into a new, empty database. Only a store that has
// committed nothing may be restored.
func (s *Store) BeginRestore(version int64) (*Restore, error) {
	if version <= 0 {
		return nil, fmt.Errorf("restore state: version %d is not a block height", version)
	}
	if h, _ := s.LastCommit(); h != 0 {
		return nil, fmt.Errorf("restore state: the store already holds version %d", h)
	}
	var db dbm.DB = dbm.NewMemDB()
	if s.dir != "" {
		if err := os.RemoveAll(filepath.Join(s.dir, restoreDBName+".db")); err != nil {
			return nil, fmt.Errorf("restore state: remove an earlier partial import: %w", err)
		}
		var err error
		if db, err = openLevelDB(restoreDBName, s.dir); err != nil {
			return nil, err
		}
	}
	tree := iavl.NewMutableTree(iavldb.NewWrapper(db), cacheSize, false, iavl.NewNopLogger(), iavl.SyncOption(s.dir != ""))
	imp, err := tree.Import(version)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("restore state: %w", err)
	}
	return &Restore{s: s, db: db, tree: tree, imp: imp, version: version}, nil
}

// Add imports the next node, in export order.
func (r *Restore) Add(n *Node) error {
	if r.imp == nil {
		return errors.New("restore state: the import is over")
	}
	if err := r.imp.Add(&iavl.ExportNode{Key: n.Key, Value: n.Value, Version: n.Version, Height: n.Height}); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	return nil
}

// ErrRestoreInvalid is Finish's error when the imported nodes do not form a tree whose root is
// the expected hash: the snapshot, not the store, is at fault.
var ErrRestoreInvalid = errors.New("restored state is not the expected state")

// Finish completes the import and, if its root hash is wantHash, makes it the store's state.
// On any error the store is unchanged and the import is discarded.
func (r *Restore) Finish(wantHash []byte) error {
	if r.imp == nil {
		return errors.New("restore state: the import is over")
	}
	err := r.imp.Commit()
	r.imp = nil
	if err != nil {
		r.discard()
		return fmt.Errorf("%w: %v", ErrRestoreInvalid, err)
	}
	if got := r.tree.Hash(); !bytes.Equal(got, wantHash) {
		r.discard()
		return fmt.Errorf("%w: root %X, want %X", ErrRestoreInvalid, got, wantHash)
	}
	return r.s.swapIn(r)
}

// Abort discards the import.
func (r *Restore) Abort() {
	if r.imp != nil {
		r.imp.Close()
		r.imp = nil
	}
	r.discard()
}

func (r *Restore) discard() {
	if r.db == nil {
		return
	}
	r.db.Close()
	r.db = nil
	if r.s.dir != "" {
		os.RemoveAll(filepath.Join(r.s.dir, restoreDBName+".db"))
	}
}

// swapIn replaces the store's database with the restored one. For a file store the switch is a
// directory rename behind a marker file, so that a crash midway is completed by the next Open.
func (s *Store) swapIn(r *Restore) error {
	s.mu.RLock()
	keys := s.keys
	s.mu.RUnlock()
	keys.close() // before the lock: the fill reads the old tree under it
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		s.db.Close()
		s.db, s.tree = r.db, r.tree
		r.db = nil
		return s.resetCache()
	}
	r.db.Close()
	r.db = nil
	if err := fsutil.WriteFileAtomic(filepath.Join(s.dir, restoreDone), nil, 0o600); err != nil {
		os.RemoveAll(filepath.Join(s.dir, restoreDBName+".db"))
		return fmt.Errorf("restore state: %w", err)
	}
	s.db.Close()
	if err := finishRestore(s.dir); err != nil {
		return err
	}
	db, err := openLevelDB(appDBName, s.dir)
	if err != nil {
		return err
	}
	tree, err := loadTree(db, iavl.SyncOption(true))
	if err != nil {
		db.Close()
		return err
	}
	s.db, s.tree = db, tree
	return s.resetCache()
}

// resetCache empties the caches of the replaced state and starts a key filter of the new one.
func (s *Store) resetCache() error {
	clear(s.pending)
	s.values = newValueCache(valueCacheBytes)
	s.values.version = s.tree.Version()
	return s.startKeyFilter()
}

// recoverRestore runs before a file store opens: a restore that reached its marker is moved into
// place; one that did not is deleted.
func recoverRestore(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, restoreDone)); err == nil {
		return finishRestore(dir)
	}
	if err := os.RemoveAll(filepath.Join(dir, restoreDBName+".db")); err != nil {
		return fmt.Errorf("remove a partial state restore: %w", err)
	}
	return nil
}

// finishRestore moves a completed restore in place of app.db and removes the marker.
func finishRestore(dir string) error {
	live, restored := filepath.Join(dir, appDBName+".db"), filepath.Join(dir, restoreDBName+".db")
	if _, err := os.Stat(restored); err == nil {
		if err := os.RemoveAll(live); err != nil {
			return fmt.Errorf("restore state: remove the old state: %w", err)
		}
		if err := os.Rename(restored, live); err != nil {
			return fmt.Errorf("restore state: %w", err)
		}
		if err := fsutil.SyncDir(dir); err != nil {
			return err
		}
	}
	if err := os.Remove(filepath.Join(dir, restoreDone)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("restore state: %w", err)
	}
	return fsutil.SyncDir(dir)
}
