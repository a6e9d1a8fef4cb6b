package app

import (
	"crypto/ed25519"
	"crypto/sha256"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/tx"
)

// TestAttackIngressBatchKeepsEachAnswer: concurrent submissions are checked in batches, and a
// forged signature in a batch fails its own tx only, whatever its place in the batch.
func TestAttackIngressBatchKeepsEachAnswer(t *testing.T) {
	const n = 4 * maxIngressBatch
	ts := make([]*tx.Tx, n)
	for i := range ts {
		seed := sha256.Sum256([]byte("ingress-" + strconv.Itoa(i)))
		key := ed25519.NewKeyFromSeed(seed[:])
		raw, err := tx.Sign(key, "c", tx.AddressOf(key.Public().(ed25519.PublicKey)), 0, "identity/register", map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		if ts[i], err = tx.Decode(raw); err != nil {
			t.Fatal(err)
		}
		if i%7 == 3 {
			ts[i].Sig = append([]byte(nil), ts[i].Sig...)
			ts[i].Sig[5] ^= 1
		}
	}
	b := sigBatcher{wait: time.Hour} // batches close when full: exactly n / maxIngressBatch
	got := make([]error, n)
	var wg sync.WaitGroup
	for i := range ts {
		wg.Go(func() { got[i] = b.verify(ts[i]) })
	}
	wg.Wait()
	for i, err := range got {
		if forged := i%7 == 3; forged != (codes.Of(err) == codes.BadSignature) || !forged && err != nil {
			t.Fatalf("tx %d (forged %v): %v", i, forged, err)
		}
	}
	if b.sigs.Load() != n || b.batches.Load() != n/maxIngressBatch {
		t.Fatalf("%d signatures in %d batches, want %d in %d", b.sigs.Load(), b.batches.Load(), n, n/maxIngressBatch)
	}
}
