package custody_test

import (
	"fmt"
	"testing"

	"github.com/medchain/medchain/custody"
)

// BenchmarkAdd is the cost of keeping one custodial patient (seal and an atomic, synced write).
func BenchmarkAdd(b *testing.B) {
	s, _ := open(b, b.TempDir(), newKey(b, "hospital"))
	ids := []custody.Identifier{{System: "urn:oid:2.16.840.1.113883.19.5", Value: "MRN-0000001"}}
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = fmt.Sprintf("p%d", i)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		k := newKey(b, "patient")
		b.StartTimer()
		if err := s.Add(k, keys[i], ids); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen1000 is an agent's start with 1,000 custodial patients (each file opened).
func BenchmarkOpen1000(b *testing.B) {
	dir, owner := b.TempDir(), newKey(b, "hospital")
	s, _ := open(b, dir, owner)
	for i := range 1000 {
		if err := s.Add(newKey(b, "patient"), fmt.Sprintf("p%d", i), []custody.Identifier{{Value: fmt.Sprintf("MRN-%07d", i)}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if s, _ := open(b, dir, owner); len(s.Patients()) != 1000 {
			b.Fatal("lost patients")
		}
	}
}
