package tx_test

import (
	"crypto/ed25519"
	"crypto/sha512"
	"fmt"
	"math/big"
	"testing"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/tx"
)

// Encodings of the identity and of the point of order 2 (x = 0, y = -1 mod p).
var (
	identityPoint = append([]byte{1}, make([]byte, 31)...)
	orderTwoPoint = append(append([]byte{0xec}, repeat(0xff, 30)...), 0x7f)
)

func repeat(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// smallOrderSigned is a tx "signed" by the order-2 point with R = identity and S = 0, a signature
// nobody can refuse to have made: the cofactored equation [8](SB - R - kA) = 0 holds for every
// body, the cofactorless one (R = SB - kA) only when k = H(R || A || body) is even.
func smallOrderSigned(body string) (t *tx.Tx, kOdd bool) {
	sig := append(append([]byte(nil), identityPoint...), make([]byte, 32)...)
	h := sha512.Sum512(append(append(append([]byte(nil), identityPoint...), orderTwoPoint...), body...))
	for i, j := 0, len(h)-1; i < j; i, j = i+1, j-1 { // little-endian to big.Int's big-endian
		h[i], h[j] = h[j], h[i]
	}
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	k := new(big.Int).Mod(new(big.Int).SetBytes(h[:]), l)
	return &tx.Tx{Envelope: tx.Envelope{Body: []byte(body), PubKey: orderTwoPoint, Sig: sig}}, k.Bit(0) == 1
}

// TestAttackBatchVerifyAgreesWithAlone: a node may check tx signatures in batches only if a
// signature gets the same answer in any batch as alone, or two nodes could decide one tx
// differently. Valid, forged, altered and non-canonical signatures and the small-order edge
// cases on which ZIP-215 and crypto/ed25519 differ, in batches of every size and position:
// VerifyBatch answers what Verify does, and the rule is ZIP-215's.
func TestAttackBatchVerifyAgreesWithAlone(t *testing.T) {
	var all []*tx.Tx
	var want []bool
	add := func(t *tx.Tx, ok bool) { all, want = append(all, t), append(want, ok) }
	for i := range 20 {
		k := keyN(i)
		body := fmt.Sprintf(`{"n":%d}`, i)
		good := &tx.Tx{Envelope: tx.Envelope{Body: []byte(body), PubKey: k.Public().(ed25519.PublicKey), Sig: ed25519.Sign(k, []byte(body))}}
		add(good, true)
		switch i % 5 {
		case 0: // another body's signature
			add(&tx.Tx{Envelope: tx.Envelope{Body: []byte(body + " "), PubKey: good.PubKey, Sig: good.Sig}}, false)
		case 1: // a flipped bit in R
			sig := append([]byte(nil), good.Sig...)
			sig[3] ^= 1
			add(&tx.Tx{Envelope: tx.Envelope{Body: good.Envelope.Body, PubKey: good.PubKey, Sig: sig}}, false)
		case 2: // S + L: the same equation, a non-canonical scalar, refused by ZIP-215
			add(&tx.Tx{Envelope: tx.Envelope{Body: good.Envelope.Body, PubKey: good.PubKey, Sig: addOrder(good.Sig)}}, false)
		case 3: // another key
			add(&tx.Tx{Envelope: tx.Envelope{Body: good.Envelope.Body, PubKey: keyN(100 + i).Public().(ed25519.PublicKey), Sig: good.Sig}}, false)
		}
	}
	odd := 0
	for i := range 8 {
		st, kOdd := smallOrderSigned(fmt.Sprintf(`{"small":%d}`, i))
		add(st, true) // valid under ZIP-215 whatever k is
		stdLib := voi.VerifyWithOptions(voi.PublicKey(st.PubKey), st.Envelope.Body, st.Sig, &voi.Options{Verify: voi.VerifyOptionsStdLib})
		if stdLib == kOdd {
			t.Fatalf("test assumption: the cofactorless rule gives %v for k odd = %v", stdLib, kOdd)
		}
		if kOdd {
			odd++
		}
	}
	if odd == 0 {
		t.Fatal("test assumption: no small-order case the cofactorless rule refuses")
	}
	for i, x := range all {
		if err := x.Verify(); (err == nil) != want[i] || (err != nil && codes.Of(err) != codes.BadSignature) {
			t.Fatalf("tx %d alone: %v, want valid %v", i, err, want[i])
		}
	}
	for size := 1; size <= len(all); size = size*2 + 1 {
		for start := 0; start < len(all); start += size {
			batch := all[start:min(start+size, len(all))]
			for j, err := range tx.VerifyBatch(batch) {
				if (err == nil) != want[start+j] || (err != nil && codes.Of(err) != codes.BadSignature) {
					t.Fatalf("batch of %d from %d, tx %d: %v, want valid %v", len(batch), start, start+j, err, want[start+j])
				}
			}
		}
	}
	if len(tx.VerifyBatch(nil)) != 0 {
		t.Fatal("an empty batch has answers")
	}
}

// addOrder returns sig with L (the group order) added to its scalar S, little-endian.
func addOrder(sig []byte) []byte {
	l := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	out := append([]byte(nil), sig...)
	carry := 0
	for i := range 32 {
		v := int(out[32+i]) + int(l[i]) + carry
		out[32+i], carry = byte(v), v>>8
	}
	return out
}

// BenchmarkVerifyBatch compares checking 16 tx signatures one by one and in one batch.
func BenchmarkVerifyBatch(b *testing.B) {
	ts := make([]*tx.Tx, 16)
	for i := range ts {
		k := keyN(i)
		body := []byte(fmt.Sprintf(`{"n":%d}`, i))
		ts[i] = &tx.Tx{Envelope: tx.Envelope{Body: body, PubKey: k.Public().(ed25519.PublicKey), Sig: ed25519.Sign(k, body)}}
	}
	b.Run("alone", func(b *testing.B) {
		for b.Loop() {
			for _, t := range ts {
				if t.Verify() != nil {
					b.Fatal("invalid")
				}
			}
		}
	})
	b.Run("batch", func(b *testing.B) {
		for b.Loop() {
			for _, err := range tx.VerifyBatch(ts) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// keyN is the test key number n.
func keyN(n int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1] = byte(n), byte(n>>8)
	return ed25519.NewKeyFromSeed(seed)
}
