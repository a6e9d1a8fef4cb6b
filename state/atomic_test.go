package state

import (
	"fmt"
	"sync/atomic"
	"testing"

	dbm "github.com/cosmos/cosmos-db"
)

// countingDB counts the batch writes that reach the database.
type countingDB struct {
	dbm.DB
	writes *atomic.Int64
}

func (d countingDB) NewBatch() dbm.Batch { return countingBatch{d.DB.NewBatch(), d.writes} }
func (d countingDB) NewBatchWithSize(n int) dbm.Batch {
	return countingBatch{d.DB.NewBatchWithSize(n), d.writes}
}

type countingBatch struct {
	dbm.Batch
	writes *atomic.Int64
}

func (b countingBatch) Write() error     { b.writes.Add(1); return b.Batch.Write() }
func (b countingBatch) WriteSync() error { b.writes.Add(1); return b.Batch.WriteSync() }

// TestAttackVersionWrittenAtOnce: a version larger than IAVL's default flush threshold (100 kB)
// went to disk in several writes, so a SIGKILL between them left a version without its root
// and the node could not start again ("load app state tree: version does not exist", seen in
// e2e.TestSIGKILLRecovery). Each commit is now one atomic write, whatever its size.
func TestAttackVersionWrittenAtOnce(t *testing.T) {
	var writes atomic.Int64
	s, err := load(countingDB{dbm.NewMemDB(), &writes})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for round := range 3 {
		w := s.Working()
		for i := range 4000 { // ~4000 leaves and as many inner nodes of ~150 bytes: ~1 MB
			w.Set(fmt.Appendf(nil, "k/%d/%06d", round, i), make([]byte, 100))
		}
		before := writes.Load()
		if _, _, err := s.Commit(); err != nil {
			t.Fatal(err)
		}
		if n := writes.Load() - before; n != 1 {
			t.Fatalf("round %d: the version was written in %d writes, want 1", round, n)
		}
	}
}
