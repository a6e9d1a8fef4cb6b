package state_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/medchain/medchain/state"
)

func open(t *testing.T) *state.Store {
	t.Helper()
	s, err := state.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCacheIsolatesAndOrdersWrites(t *testing.T) {
	s := open(t)
	w := s.Working()
	w.Set([]byte("a/1"), []byte("one"))
	w.Set([]byte("a/2"), []byte("two"))
	c := state.NewCache(w)
	c.Set([]byte("a/3"), []byte("three"))
	c.Delete([]byte("a/1"))
	if v, _ := w.Get([]byte("a/3")); v != nil {
		t.Fatal("cache write leaked before Write")
	}
	var keys []string
	c.Iterate([]byte("a/"), func(k, v []byte) bool { keys = append(keys, string(k)+"="+string(v)); return false })
	if fmt.Sprint(keys) != "[a/2=two a/3=three]" {
		t.Fatalf("merged iteration = %v", keys)
	}
	// A discarded cache leaves no trace; a written one applies everything.
	if err := c.Write(w); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.Get([]byte("a/1")); v != nil {
		t.Fatal("delete not applied")
	}
	if v, _ := w.Get([]byte("a/3")); string(v) != "three" {
		t.Fatal("set not applied")
	}
}

// The same writes in a different order give the same root only because Cache sorts them;
// this checks that the store's hash is a function of content after Cache.Write.
func TestCacheWriteOrderIndependent(t *testing.T) {
	hash := func(order []int) []byte {
		s := open(t)
		c := state.NewCache(s.Working())
		for _, i := range order {
			c.Set(fmt.Appendf(nil, "k%03d", i), fmt.Appendf(nil, "v%d", i))
		}
		c.Write(s.Working())
		_, h, err := s.Commit()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	a := hash([]int{5, 1, 9, 3, 7, 2, 8, 4, 6, 0})
	b := hash([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	if string(a) != string(b) {
		t.Fatal("root depends on write order")
	}
}

func TestProofs(t *testing.T) {
	s := open(t)
	for i := 0; i < 100; i++ {
		s.Working().Set(fmt.Appendf(nil, "key/%02d", i), fmt.Appendf(nil, "value-%d", i))
	}
	version, root, err := s.Commit()
	if err != nil || version != 1 {
		t.Fatalf("commit: %d %v", version, err)
	}
	v, err := s.At(0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Proof([]byte("key/42"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := p.Marshal()
	if err := state.VerifyMembership(root, raw, []byte("key/42"), []byte("value-42")); err != nil {
		t.Fatal(err)
	}
	if state.VerifyMembership(root, raw, []byte("key/42"), []byte("value-43")) == nil {
		t.Fatal("proof verified a wrong value")
	}
	if state.VerifyMembership(root, raw, []byte("key/41"), []byte("value-42")) == nil {
		t.Fatal("proof verified a wrong key")
	}
	other := append([]byte(nil), root...)
	other[0] ^= 1
	if state.VerifyMembership(other, raw, []byte("key/42"), []byte("value-42")) == nil {
		t.Fatal("proof verified against a wrong root")
	}
	// Later versions do not change what an old view proves.
	s.Working().Set([]byte("key/42"), []byte("changed"))
	s.Commit()
	old, _ := s.At(1)
	if got, _ := old.Get([]byte("key/42")); string(got) != "value-42" {
		t.Fatalf("version 1 now reads %q", got)
	}
}

func TestReopenKeepsLastCommit(t *testing.T) {
	dir := t.TempDir()
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Working().Set([]byte("k"), []byte("v"))
	_, h1, _ := s.Commit()
	s.Working().Set([]byte("uncommitted"), []byte("x"))
	s.Close()
	s, err = state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, h := s.LastCommit()
	if v != 1 || string(h) != string(h1) {
		t.Fatalf("reopened at version %d hash %x, want 1 %x", v, h, h1)
	}
	if got, _ := s.Working().Get([]byte("uncommitted")); got != nil {
		t.Fatal("uncommitted write survived a reopen")
	}
}

// The value cache serves the latest version and never a stale value, across commits and for
// older views.
func TestValueCacheFollowsCommits(t *testing.T) {
	s := open(t)
	s.Working().Set([]byte("k"), []byte("v1"))
	s.Working().Set([]byte("gone"), []byte("x"))
	s.Commit()
	v1, _ := s.At(0)
	if got, _ := v1.Get([]byte("k")); string(got) != "v1" { // fills the cache
		t.Fatalf("v1 = %q", got)
	}
	s.Working().Set([]byte("k"), []byte("v2"))
	s.Working().Delete([]byte("gone"))
	s.Commit()
	v2, _ := s.At(0)
	for i := 0; i < 2; i++ { // miss then hit
		if got, _ := v2.Get([]byte("k")); string(got) != "v2" {
			t.Fatalf("latest k = %q", got)
		}
		if got, _ := v2.Get([]byte("gone")); got != nil {
			t.Fatalf("deleted key reads %q", got)
		}
	}
	if got, _ := v1.Get([]byte("k")); string(got) != "v1" {
		t.Fatalf("old view reads %q through the cache", got)
	}
	// A block that is rolled back leaves nothing in the cache.
	s.Working().Set([]byte("k"), []byte("never"))
	s.Rollback()
	s.Working().Set([]byte("other"), []byte("o"))
	s.Commit()
	v3, _ := s.At(0)
	if got, _ := v3.Get([]byte("k")); string(got) != "v2" {
		t.Fatalf("after rollback k = %q", got)
	}
}

// The working version reads this block's writes over the last commit, whichever of the block's
// writes, the value cache (values and known-absent keys that views filled) or the tree answers:
// random writes, deletes, reads, commits and rollbacks against a plain map.
func TestWorkingReadsMatchAModel(t *testing.T) {
	s := open(t)
	rng := rand.New(rand.NewPCG(1, 2))
	committed, block := map[string]string{}, map[string]*string{}
	want := func(k string) (string, bool) {
		if v, ok := block[k]; ok {
			if v == nil {
				return "", false
			}
			return *v, true
		}
		v, ok := committed[k]
		return v, ok
	}
	for step := range 5000 {
		k := fmt.Sprintf("k%02d", rng.IntN(40))
		switch op := rng.IntN(20); {
		case op < 6:
			v := fmt.Sprintf("v%d", step)
			s.Working().Set([]byte(k), []byte(v))
			block[k] = &v
		case op < 8:
			s.Working().Delete([]byte(k))
			block[k] = nil
		case op < 11: // a query fills the value cache, absent keys too
			view, err := s.At(0)
			if err != nil {
				continue // nothing committed yet
			}
			got, _ := view.Get([]byte(k))
			if v, ok := committed[k]; (got != nil) != ok || string(got) != v {
				t.Fatalf("step %d: view reads %s = %q, committed %q", step, k, got, v)
			}
		case op < 12:
			for k, v := range block {
				if v == nil {
					delete(committed, k)
				} else {
					committed[k] = *v
				}
			}
			clear(block)
			s.Commit()
		case op < 13:
			clear(block)
			s.Rollback()
		default:
			got, err := s.Working().Get([]byte(k))
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := want(k); (got != nil) != ok || string(got) != v {
				t.Fatalf("step %d: working reads %s = %q, want %q (present %v)", step, k, got, v, ok)
			}
		}
	}
}

// A view iterates in batches: every key of its prefix once, in order, across batch boundaries,
// from a start key, stopping when fn says so; and fn may read the store while it runs.
func TestViewIterateInBatches(t *testing.T) {
	s := open(t)
	w := s.Working()
	const n = 200
	for i := range n {
		if err := w.Set(fmt.Appendf(nil, "p/%04d", i), fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	w.Set([]byte("q/after"), []byte("x"))
	w.Set([]byte("o/before"), []byte("x"))
	if _, _, err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	v, err := s.At(0)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	err = v.Iterate([]byte("p/"), func(k, val []byte) bool {
		if got, err := v.Get(k); err != nil || !bytes.Equal(got, val) { // a read inside fn
			t.Fatalf("get %s inside iteration: %q %v", k, got, err)
		}
		seen = append(seen, string(k))
		return false
	})
	if err != nil || len(seen) != n || seen[0] != "p/0000" || seen[n-1] != "p/0199" || !slices.IsSorted(seen) {
		t.Fatalf("iterated %d keys (%v), first %v", len(seen), err, seen[:min(3, len(seen))])
	}
	seen = nil
	v.IterateFrom([]byte("p/"), []byte("p/0063"), func(k, _ []byte) bool {
		seen = append(seen, string(k))
		return len(seen) == 70
	})
	if len(seen) != 70 || seen[0] != "p/0063" || seen[69] != "p/0132" {
		t.Fatalf("from p/0063: %d keys, %v..%v", len(seen), seen[0], seen[len(seen)-1])
	}
}

// A committed view keeps answering for its version while the working tree is written and
// committed around it, from another goroutine. (The data race IAVL's shared nodes caused here
// was caught under -race by app.TestAttackConcurrentIngressNeverStale.)
func TestViewReadsDuringWrites(t *testing.T) {
	s := open(t)
	w := s.Working()
	for i := range 500 {
		w.Set(fmt.Appendf(nil, "k/%04d", i), []byte("v0"))
	}
	if _, _, err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	v, err := s.At(0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := range 300 { // every commit makes the next write clone nodes the view shares
			for i := range 5 {
				w.Set(fmt.Appendf(nil, "k/%04d", (round*37+i*101)%500), fmt.Appendf(nil, "v%d", round+1))
			}
			s.Commit()
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		default:
		}
		if got, err := v.Get(fmt.Appendf(nil, "k/%04d", i%500)); err != nil || string(got) != "v0" {
			t.Fatalf("view changed under writes: %q %v", got, err)
		}
		if i%100 == 0 {
			v.Iterate([]byte("k/"), func(_, val []byte) bool { return string(val) != "v0" })
		}
	}
}

// A view decodes a value once and shares the result; each view (version) has its own; a value
// that is absent or fails to decode is not kept.
func TestViewDecodesOnce(t *testing.T) {
	s := open(t)
	s.Working().Set([]byte("k"), []byte("v1"))
	s.Commit()
	calls := 0
	decode := func(raw []byte) (any, error) {
		calls++
		if raw == nil {
			return nil, fmt.Errorf("absent")
		}
		out := string(raw)
		return &out, nil
	}
	v1, _ := s.At(0)
	a, err := v1.Decoded([]byte("k"), decode)
	b, _ := v1.Decoded([]byte("k"), decode)
	if err != nil || *a.(*string) != "v1" || a != b || calls != 1 {
		t.Fatalf("decoded %v %v, shared %t, %d decodes", a, err, a == b, calls)
	}
	for range 2 {
		if _, err := v1.Decoded([]byte("missing"), decode); err == nil {
			t.Fatal("an absent value decoded")
		}
	}
	if calls != 3 {
		t.Fatalf("an absent value was kept: %d decodes", calls)
	}
	s.Working().Set([]byte("k"), []byte("v2"))
	s.Commit()
	v2, _ := s.At(0)
	if c, _ := v2.Decoded([]byte("k"), decode); *c.(*string) != "v2" || *a.(*string) != "v1" {
		t.Fatalf("the new version reads %v, the old %v", *c.(*string), *a.(*string))
	}
}
