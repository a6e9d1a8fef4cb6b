package netkey

import (
	"bytes"
	"crypto/rand"
	"testing"
)

func dataKey(t testing.TB) []byte {
	k := make([]byte, DataKeyBytes)
	rand.Read(k)
	return k
}

func deal(t testing.TB, n int) (*Public, []Share) {
	t.Helper()
	pub, shares, err := Deal(n)
	if err != nil {
		t.Fatal(err)
	}
	return pub, shares
}

func wrap(t testing.TB, pub *Public, key, label []byte) *Wrapped {
	t.Helper()
	raw, err := Wrap(pub, key, label)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != WrappedBytes {
		t.Fatalf("wrapped %d bytes, want %d", len(raw), WrappedBytes)
	}
	w, err := ParseWrapped(raw, label)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func releaseAll(t testing.TB, w *Wrapped, shares []Share) []*DecShare {
	t.Helper()
	var out []*DecShare
	for i := range shares {
		d, err := Release(&shares[i], w)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func TestThreshold(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5, 10: 7} {
		if got := Threshold(n); got != want {
			t.Errorf("Threshold(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestAnyThresholdSubsetUnwraps(t *testing.T) {
	for _, n := range []int{1, 4, 7} {
		pub, shares := deal(t, n)
		if err := pub.Validate(); err != nil {
			t.Fatal(err)
		}
		for i := range shares {
			if err := pub.Check(&shares[i]); err != nil {
				t.Fatalf("n=%d share %d: %v", n, i+1, err)
			}
		}
		key, label := dataKey(t), []byte("chain\nrecord-1\n1")
		w := wrap(t, pub, key, label)
		all := releaseAll(t, w, shares)
		// The last t shares, and the first t in reverse order: any t distinct holders suffice.
		last := all[n-pub.Threshold:]
		first := make([]*DecShare, pub.Threshold)
		for i := range first {
			first[i] = all[pub.Threshold-1-i]
		}
		for _, subset := range [][]*DecShare{last, first} {
			got, err := Combine(pub, w, subset)
			if err != nil {
				t.Fatalf("n=%d: %v", n, err)
			}
			if !bytes.Equal(got, key) {
				t.Fatalf("n=%d: unwrapped another key", n)
			}
		}
		if pub.Threshold > 1 {
			if _, err := Combine(pub, w, all[:pub.Threshold-1]); err == nil {
				t.Fatalf("n=%d: %d shares unwrapped a key of threshold %d", n, pub.Threshold-1, pub.Threshold)
			}
		}
	}
}

// A holder that answers with something other than its share is caught by the proof; the reader
// ignores it and combines the honest ones.
func TestAttackWrongShareDetectedAndIgnored(t *testing.T) {
	pub, shares := deal(t, 4)
	key, label := dataKey(t), []byte("label")
	w := wrap(t, pub, key, label)
	all := releaseAll(t, w, shares)

	// Holder 1 uses a random secret, with a valid-looking proof of it.
	liar := Share{Index: 1, Secret: shares[1].Secret} // holder 2's secret under index 1
	bad, err := Release(&liar, w)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyShare(pub, w, bad); err == nil {
		t.Fatal("a share made with another holder's secret passed")
	}
	// A flipped bit in an honest share.
	flipped := &DecShare{Index: all[2].Index, Share: bytes.Clone(all[2].Share)}
	flipped.Share[5] ^= 1
	if err := VerifyShare(pub, w, flipped); err == nil {
		t.Fatal("an altered share passed")
	}
	// A share repeated under the same index counts once.
	if _, err := Combine(pub, w, []*DecShare{all[1], all[1], all[1]}); err == nil {
		t.Fatal("one holder's share counted three times")
	}
	got, err := Combine(pub, w, []*DecShare{bad, flipped, all[0], all[1], all[3]})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, key) {
		t.Fatal("unwrapped another key")
	}
	if _, err := Combine(pub, w, []*DecShare{bad, flipped, all[0], all[1]}); err == nil {
		t.Fatal("two valid shares unwrapped a key of threshold 3")
	}
}

// A wrapped key moved to another record does not pass, and neither does one built from another
// record's U without its randomness: the validators would otherwise decrypt the other record.
func TestAttackWrapTakenToAnotherRecord(t *testing.T) {
	pub, _ := deal(t, 4)
	raw, err := Wrap(pub, dataKey(t), []byte("chain\nvictim\n1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseWrapped(raw, []byte("chain\nmine\n1")); err == nil {
		t.Fatal("a wrap moved to another label passed")
	}
	// U + G with a fresh proof for the new label cannot be made without r; the best an attacker
	// can do is prove a U of its own, which is not the victim's.
	shifted := bytes.Clone(raw)
	u, _ := pointOf(raw[:PointBytes])
	copy(shifted, mustMarshal(suite.Point().Add(u, suite.Point().Base())))
	if _, err := ParseWrapped(shifted, []byte("chain\nvictim\n1")); err == nil {
		t.Fatal("a wrap with a shifted U passed")
	}
}

func TestAttackMalformedPoints(t *testing.T) {
	pub, shares := deal(t, 4)
	label := []byte("label")
	raw, err := Wrap(pub, dataKey(t), label)
	if err != nil {
		t.Fatal(err)
	}
	// The identity, a point of order 2 (y = -1) and a non-canonical encoding (y = p).
	identity := make([]byte, 32)
	identity[0] = 1
	order2 := bytes.Repeat([]byte{0xff}, 32)
	order2[0], order2[31] = 0xec, 0x7f
	nonCanonical := bytes.Repeat([]byte{0xff}, 32)
	nonCanonical[0], nonCanonical[31] = 0xed, 0x7f
	// A point of the prime-order group plus one of order 8 (mixed order).
	u, _ := pointOf(raw[:PointBytes])
	torsion, err := canonicalPoint([]byte{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05})
	if err != nil {
		t.Fatal(err)
	}
	mixed := mustMarshal(suite.Point().Add(u, torsion))
	for name, p := range map[string][]byte{"identity": identity, "order 2": order2, "non-canonical": nonCanonical, "mixed order": mixed} {
		bad := bytes.Clone(raw)
		copy(bad, p)
		if _, err := ParseWrapped(bad, label); err == nil {
			t.Errorf("U = %s passed", name)
		}
		if _, err := pointOf(p); err == nil {
			t.Errorf("%s decoded as a point", name)
		}
	}
	if _, err := ParseWrapped(raw[:len(raw)-1], label); err == nil {
		t.Error("a short wrap passed")
	}
	if err := (&Public{Threshold: 2, Commits: [][]byte{pub.Commits[0]}}).Validate(); err == nil {
		t.Error("a key with fewer commitments than its threshold passed")
	}
	if err := (&Public{Threshold: 1, Commits: [][]byte{identity}}).Validate(); err == nil {
		t.Error("the identity passed as a public key")
	}
	// A share of another key is not a share of this one.
	_, other := deal(t, 4)
	if err := pub.Check(&other[0]); err == nil {
		t.Error("another key's share passed Check")
	}
	if err := pub.Check(&shares[0]); err != nil {
		t.Error(err)
	}
}

func BenchmarkWrap(b *testing.B) {
	pub, _ := deal(b, 4)
	key := dataKey(b)
	for b.Loop() {
		if _, err := Wrap(pub, key, []byte("label")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseWrapped(b *testing.B) {
	pub, _ := deal(b, 4)
	raw, _ := Wrap(pub, dataKey(b), []byte("label"))
	for b.Loop() {
		if _, err := ParseWrapped(raw, []byte("label")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRelease is a validator's work per released share, the wrap already parsed.
func BenchmarkRelease(b *testing.B) {
	pub, shares := deal(b, 4)
	w := wrap(b, pub, dataKey(b), []byte("label"))
	for b.Loop() {
		if _, err := Release(&shares[0], w); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCombine is a reader's work per record: verify and combine 3 of 4 shares.
func BenchmarkCombine(b *testing.B) {
	pub, shares := deal(b, 4)
	w := wrap(b, pub, dataKey(b), []byte("label"))
	ds := releaseAll(b, w, shares[:3])
	for b.Loop() {
		if _, err := Combine(pub, w, ds); err != nil {
			b.Fatal(err)
		}
	}
}
