// Package notaryindex is a node's own index from a notarized digest to the height of the block
// that first notarized it (issue 14): what the RFC 3161 endpoint looks a hash up in. It is not
// consensus state (an index entry per document in the Merkle state cost 30 times the
// notarization throughput), and nothing in it needs trusting: the proof a lookup leads to is
// checked against the validators' signatures. It is rebuilt from the state's notarized blocks
// after a restart or a state sync (CatchUp).
package notaryindex

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Index maps leaves (contracts/notary.Leaf: the algorithm's byte, then the digest) to heights.
type Index struct {
	db *leveldb.DB
}

var keyLast = []byte("last")

// Open opens (creating) the index in dir.
func Open(dir string) (*Index, error) {
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		return nil, fmt.Errorf("notary index %s: %w", dir, err)
	}
	return &Index{db: db}, nil
}

// Close closes the index.
func (x *Index) Close() error { return x.db.Close() }

func leafKey(leaf []byte) []byte { return append([]byte("d"), leaf...) }

// Add records that the block at height notarized leaves: each keeps the lowest height it was
// seen at, whatever the order of calls. The index's last height becomes height if higher.
func (x *Index) Add(height int64, leaves [][]byte) error {
	b := new(leveldb.Batch)
	h := binary.BigEndian.AppendUint64(nil, uint64(height))
	for _, l := range leaves {
		old, err := x.db.Get(leafKey(l), nil)
		switch {
		case errors.Is(err, leveldb.ErrNotFound):
		case err != nil:
			return err
		case len(old) == 8 && int64(binary.BigEndian.Uint64(old)) <= height:
			continue
		}
		b.Put(leafKey(l), h)
	}
	if last, err := x.Last(); err != nil {
		return err
	} else if height > last {
		b.Put(keyLast, h)
	}
	return x.db.Write(b, &opt.WriteOptions{Sync: true})
}

// First returns the height that first notarized leaf, and whether any did.
func (x *Index) First(leaf []byte) (int64, bool, error) {
	v, err := x.db.Get(leafKey(leaf), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil || len(v) != 8 {
		return 0, false, fmt.Errorf("notary index: %v", err)
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// Last is the highest height the index has seen (0 for none).
func (x *Index) Last() (int64, error) {
	v, err := x.db.Get(keyLast, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return 0, nil
	}
	if err != nil || len(v) != 8 {
		return 0, fmt.Errorf("notary index: %v", err)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// Source lists the notarized blocks of the committed state above a height, in height order:
// *app.App is one.
type Source interface {
	NotarizedAfter(height int64, fn func(height int64, leaves [][]byte) error) error
}

// CatchUp adds the blocks src notarized above the index's last height (after a restart, or a
// state sync that skipped blocks).
func (x *Index) CatchUp(src Source) error {
	last, err := x.Last()
	if err != nil {
		return err
	}
	return src.NotarizedAfter(last, x.Add)
}
