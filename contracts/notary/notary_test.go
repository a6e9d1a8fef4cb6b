package notary_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/medchain/medchain/contracts/notary"
)

// TestNotaryProveMatchesMerkle: the one-path proof is the proof crypto/merkle builds for that
// leaf, for trees of every size up to 70 and each leaf, and it verifies against the root.
func TestNotaryProveMatchesMerkle(t *testing.T) {
	for n := 1; n <= 70; n++ {
		var leaves [][]byte
		for i := range n {
			d := sha256.Sum256([]byte(fmt.Sprint(n, i)))
			leaves = append(leaves, d[:])
		}
		root, want := merkle.ProofsFromByteSlices(leaves)
		for i := range n {
			got, err := notary.Prove(leaves, i)
			if err != nil {
				t.Fatal(err)
			}
			if got.Total != want[i].Total || got.Index != want[i].Index || !bytes.Equal(got.LeafHash, want[i].LeafHash) ||
				len(got.Aunts) != len(want[i].Aunts) {
				t.Fatalf("n=%d leaf %d: %+v, want %+v", n, i, got, want[i])
			}
			for j := range got.Aunts {
				if !bytes.Equal(got.Aunts[j], want[i].Aunts[j]) {
					t.Fatalf("n=%d leaf %d aunt %d differs", n, i, j)
				}
			}
			if err := got.Verify(root, leaves[i]); err != nil {
				t.Fatalf("n=%d leaf %d: %v", n, i, err)
			}
		}
	}
}
