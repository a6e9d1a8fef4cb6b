package netkey

import (
	"bytes"
	"crypto/rand"
	"strconv"
	"testing"
)

// party is one node's side of a round in these tests.
type party struct {
	index uint32
	key   *DKGKey
	share *Share // its share of the current key, if it deals in a re-sharing
}

func parties(indices ...uint32) []*party {
	out := make([]*party, len(indices))
	for i, ix := range indices {
		out[i] = &party{index: ix, key: NewDKGKey()}
	}
	return out
}

func members(ps []*party) []DKGMember {
	out := make([]DKGMember, len(ps))
	for i, p := range ps {
		out[i] = DKGMember{Index: p.index, Key: p.key.Public()}
	}
	return out
}

func nonce() []byte {
	n := make([]byte, DKGNonceBytes)
	rand.Read(n)
	return n
}

// runRound runs every phase over an in-memory "ledger" (the lists of posted messages), with
// tamper applied to the deals before anyone sees them, and returns each holder's result.
func runRound(t testing.TB, round *DKGRound, dealers, holders []*party, tamper func([]*DealBundle)) map[uint32]*DKGResult {
	t.Helper()
	all := map[*party]*Participant{}
	var order []*party
	for _, p := range append(append([]*party{}, dealers...), holders...) {
		if all[p] != nil {
			continue
		}
		order = append(order, p)
		part, err := NewParticipant(round, p.key, p.share)
		if err != nil {
			t.Fatalf("party %d: %v", p.index, err)
		}
		all[p] = part
	}
	var deals []*DealBundle
	for _, p := range dealers {
		d, err := all[p].Deal()
		if err != nil {
			t.Fatal(err)
		}
		deals = append(deals, d)
	}
	if tamper != nil {
		tamper(deals)
	}
	var responses []*ResponseBundle
	for _, p := range order {
		r, err := all[p].Respond(deals)
		if err != nil {
			t.Fatalf("party %d responds: %v", p.index, err)
		}
		if r != nil && !containsResponse(responses, r.Holder) {
			responses = append(responses, r)
		}
	}
	var justs []*JustificationBundle
	for p, part := range all {
		j, err := part.Justify(responses)
		if err != nil {
			t.Fatalf("party %d justifies: %v", p.index, err)
		}
		if j != nil {
			justs = append(justs, j)
		}
	}
	out := map[uint32]*DKGResult{}
	for _, p := range holders {
		res, err := all[p].Finish(justs)
		if err != nil {
			t.Fatalf("holder %d finishes: %v", p.index, err)
		}
		out[p.index] = res
	}
	return out
}

func containsResponse(rs []*ResponseBundle, holder uint32) bool {
	for _, r := range rs {
		if r.Holder == holder {
			return true
		}
	}
	return false
}

// sameKey checks every holder computed the same public commitments and returns them.
func sameKey(t *testing.T, results map[uint32]*DKGResult) *Public {
	t.Helper()
	var pub *Public
	for i, r := range results {
		if r == nil {
			t.Fatalf("holder %d has no result", i)
		}
		if pub == nil {
			pub = r.Public
			continue
		}
		if pub.Threshold != r.Public.Threshold || !bytes.Equal(bytes.Join(pub.Commits, nil), bytes.Join(r.Public.Commits, nil)) {
			t.Fatalf("holders disagree on the key")
		}
	}
	return pub
}

// unwrapsWith wraps a fresh data key for pub and checks that the shares (first t of them)
// combine to it.
func unwrapsWith(t *testing.T, pub *Public, shares []Share) bool {
	t.Helper()
	key := dataKey(t)
	w := wrap(t, pub, key, []byte("label"))
	got, err := Combine(pub, w, releaseAll(t, w, shares))
	return err == nil && bytes.Equal(got, key)
}

func resultShares(results map[uint32]*DKGResult) []Share {
	var out []Share
	for _, r := range results {
		out = append(out, *r.Share)
	}
	return out
}

// A fresh round among four makes a key nobody dealt: every holder agrees on it, any three
// shares unwrap, and re-sharing it to a group that drops one holder and adds another keeps the
// public key while the old shares stop combining with the new ones.
func TestDKGFreshThenReshare(t *testing.T) {
	first := parties(1, 2, 3, 4)
	round := &DKGRound{Nonce: nonce(), Holders: members(first), Threshold: Threshold(4)}
	results := runRound(t, round, first, first, nil)
	pub := sameKey(t, results)
	if pub.Threshold != 3 {
		t.Fatalf("threshold %d, want 3", pub.Threshold)
	}
	for _, r := range results {
		if err := pub.Check(r.Share); err != nil {
			t.Fatal(err)
		}
	}
	old := resultShares(results)
	if !unwrapsWith(t, pub, old[:3]) {
		t.Fatal("three shares of the generated key do not unwrap")
	}

	// Holder 4 leaves, a newcomer takes index 5: the three staying holders deal their shares.
	dealers := parties(1, 2, 3)
	for _, d := range dealers {
		s := *results[d.index].Share
		d.share = &s
	}
	newcomer := parties(5)[0]
	holders := append(append([]*party{}, dealers...), newcomer)
	re := &DKGRound{Nonce: nonce(), Dealers: members(dealers), Holders: members(holders), Threshold: Threshold(4),
		OldThreshold: pub.Threshold, Current: pub}
	reshared := runRound(t, re, dealers, holders, nil)
	pub2 := sameKey(t, reshared)
	if !bytes.Equal(pub2.Key(), pub.Key()) {
		t.Fatal("re-sharing changed the public key")
	}
	if bytes.Equal(bytes.Join(pub2.Commits[1:], nil), bytes.Join(pub.Commits[1:], nil)) {
		t.Fatal("re-sharing kept the sharing polynomial")
	}
	fresh := resultShares(reshared)
	if !unwrapsWith(t, pub2, fresh[:3]) {
		t.Fatal("three new shares do not unwrap a key wrapped for the unchanged public key")
	}
	// A key wrapped before the re-sharing opens with the new shares.
	key := dataKey(t)
	w := wrap(t, pub, key, []byte("before"))
	if got, err := Combine(pub2, w, releaseAll(t, w, fresh[1:])); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("a key wrapped before the re-sharing: %v", err)
	}
	// The old holder 4's share: its decryption share fails the new key's check, and it does not
	// combine with two new shares.
	var gone Share
	for _, s := range old {
		if s.Index == 4 {
			gone = s
		}
	}
	if err := pub2.Check(&gone); err == nil {
		t.Fatal("an old share checks against the re-shared key")
	}
	d, err := Release(&gone, w)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyShare(pub2, w, d); err == nil {
		t.Fatal("a decryption share from an old share verifies against the re-shared key")
	}
	mixed := append(releaseAll(t, w, fresh[:2]), d)
	if _, err := Combine(pub2, w, mixed); err == nil {
		t.Fatal("an old share combined with two new ones")
	}
}

// TestAttackDKGBadDealJustifiedOrEvicted: a dealer that sends one holder a share that does not
// match its polynomial draws a complaint; the revealed share repairs it and every holder still
// agrees. A dealer whose polynomial has the wrong degree is evicted by everyone, and the rest
// still make a key.
func TestAttackDKGBadDealJustifiedOrEvicted(t *testing.T) {
	ps := parties(1, 2, 3, 4)
	round := &DKGRound{Nonce: nonce(), Holders: members(ps), Threshold: Threshold(4)}
	results := runRound(t, round, ps, ps, func(deals []*DealBundle) {
		for i := range deals[0].Shares {
			if deals[0].Shares[i].Holder == 3 {
				deals[0].Shares[i].Share[len(deals[0].Shares[i].Share)-1] ^= 1 // holder 3 cannot decrypt it
			}
		}
	})
	pub := sameKey(t, results)
	if !unwrapsWith(t, pub, resultShares(results)[1:]) {
		t.Fatal("a justified round's shares do not unwrap")
	}

	ps = parties(1, 2, 3, 4)
	round = &DKGRound{Nonce: nonce(), Holders: members(ps), Threshold: Threshold(4)}
	results = runRound(t, round, ps, ps, func(deals []*DealBundle) {
		deals[1].Public = deals[1].Public[:1]
	})
	delete(results, 2) // the cheat keeps its own polynomial; the honest three agree without it
	pub = sameKey(t, results)
	if !unwrapsWith(t, pub, resultShares(results)[:3]) {
		t.Fatal("the round without the evicted dealer does not unwrap")
	}
}

// TestAttackDKGReplayedAcrossRounds: a deal from another round (another nonce) is not taken:
// its dealer draws complaints it cannot answer and the round goes on without it.
func TestAttackDKGReplayedAcrossRounds(t *testing.T) {
	ps := parties(1, 2, 3, 4)
	other := &DKGRound{Nonce: nonce(), Holders: members(ps), Threshold: Threshold(4)}
	stale, err := NewParticipant(other, ps[0].key, nil)
	if err != nil {
		t.Fatal(err)
	}
	old, err := stale.Deal()
	if err != nil {
		t.Fatal(err)
	}
	round := &DKGRound{Nonce: nonce(), Holders: members(ps), Threshold: Threshold(4)}
	results := runRound(t, round, ps, ps, func(deals []*DealBundle) { deals[0] = old })
	// Holder 1 dealt one polynomial and the others took another: it cannot agree with them.
	delete(results, 1)
	pub := sameKey(t, results)
	if !unwrapsWith(t, pub, resultShares(results)) {
		t.Fatal("the round without the replayed deal does not unwrap")
	}
}

// BenchmarkDKGRound is one fresh round of n parties, all in one process: what the whole
// network computes for a round (each node does 1/n of it).
func BenchmarkDKGRound(b *testing.B) {
	for _, n := range []int{4, 16} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				ix := make([]uint32, n)
				for i := range ix {
					ix[i] = uint32(i + 1)
				}
				ps := parties(ix...)
				round := &DKGRound{Nonce: nonce(), Holders: members(ps), Threshold: Threshold(n)}
				if res := runRound(b, round, ps, ps, nil); len(res) != n {
					b.Fatal("round failed")
				}
			}
		})
	}
}

// TestAttackDKGDuplicateKey: a round whose members share a key (one party enrolled another's)
// or an index is refused before any message is made.
func TestAttackDKGDuplicateKey(t *testing.T) {
	ps := parties(1, 2, 3, 4)
	ms := members(ps)
	ms[3].Key = ms[0].Key
	if _, err := NewParticipant(&DKGRound{Nonce: nonce(), Holders: ms, Threshold: 3}, ps[0].key, nil); err == nil {
		t.Fatal("a round with a key used twice")
	}
	ms = members(ps)
	ms[3].Index = 1
	if _, err := NewParticipant(&DKGRound{Nonce: nonce(), Holders: ms, Threshold: 3}, ps[1].key, nil); err == nil {
		t.Fatal("a round with an index used twice")
	}
}
