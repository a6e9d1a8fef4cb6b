package snapshot_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/medchain/medchain/snapshot"
	"github.com/medchain/medchain/state"
)

// benchState is a file store holding account-like values of about 300 bytes.
func benchState(b *testing.B, keys int) *state.Store {
	b.Helper()
	s, err := state.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for i := 0; i < keys; i++ {
		// JSON-like: field names repeat, keys and hashes (hex) do not.
		sum := sha256.Sum256(fmt.Append(nil, i))
		value := fmt.Appendf(nil, `{"address":"%x","role":"patient","name":"account %d","signing_key":"%x","encryption_key":"%x","nonce":%d}`,
			sum[:20], i, sum, sha256.Sum256(sum[:]), i%7)
		if err := s.Working().Set(fmt.Appendf(nil, "identity/account/%08d", i), value); err != nil {
			b.Fatal(err)
		}
		if i%10_000 == 9_999 {
			if _, _, err := s.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, _, err := s.Commit(); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSnapshot makes a snapshot of 100,000 keys on disk and restores it into an empty file
// store, reporting the snapshot's size.
//
//	go test -run X -bench Snapshot -benchtime 3x ./snapshot/
func BenchmarkSnapshot(b *testing.B) {
	const keys = 100_000
	src := benchState(b, keys)
	version, hash := src.LastCommit()
	b.Run("create", func(b *testing.B) {
		for b.Loop() {
			dir := b.TempDir()
			store, _ := snapshot.Open(dir)
			exp, err := src.Export(version)
			if err != nil {
				b.Fatal(err)
			}
			snap, err := store.Create(exp, 0)
			exp.Close()
			if err != nil {
				b.Fatal(err)
			}
			var size int64
			for i := uint32(0); i < snap.Chunks; i++ {
				fi, _ := os.Stat(filepath.Join(dir, fmt.Sprint(version), fmt.Sprint(i)))
				size += fi.Size()
			}
			b.ReportMetric(float64(size)/(1<<20), "MiB")
			b.ReportMetric(float64(snap.Chunks), "chunks")
		}
	})
	dir := b.TempDir()
	store, _ := snapshot.Open(dir)
	exp, _ := src.Export(version)
	snap, err := store.Create(exp, 0)
	exp.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			dst, err := state.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			r, _ := dst.BeginRestore(version)
			rest, err := snapshot.NewRestorer(snap, r.Add)
			if err != nil {
				b.Fatal(err)
			}
			for i := uint32(0); i < snap.Chunks; i++ {
				chunk, _ := store.Chunk(snap.Height, snap.Format, i)
				if _, err := rest.Apply(i, chunk); err != nil {
					b.Fatal(err)
				}
			}
			if err := r.Finish(hash); err != nil {
				b.Fatal(err)
			}
			dst.Close()
		}
	})
}
