package state_test

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/medchain/medchain/state"
)

// BenchmarkAbsentGet reads keys that are not in a committed version of 100,000 keys (what every
// registration's account lookup does) from a leveldb store: the key filter answers them.
func BenchmarkAbsentGet(b *testing.B) {
	s, err := state.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	key := func(i int) []byte {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(i))
		h := sha256.Sum256(n[:])
		return append([]byte("identity/account/"), h[:20]...)
	}
	const versions, perVersion = 20, 5000
	for v := range versions {
		w := s.Working()
		for i := range perVersion {
			if err := w.Set(key(v*perVersion+i), make([]byte, 200)); err != nil {
				b.Fatal(err)
			}
		}
		if _, _, err := s.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	h, _ := s.LastCommit()
	view, err := s.At(h)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if v, err := view.Get(key(versions*perVersion + i)); err != nil || v != nil {
			b.Fatal(v, err)
		}
	}
}
