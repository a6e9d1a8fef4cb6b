package state

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
)

// The key filter changes no answer: random writes, deletes and commits, the store reopened
// midway (its filter then filled from the last version in the background), and reads of every
// committed version (before and after the filter's base) and of the working version, against a
// model of each version.
func TestKeyFilterChangesNoAnswer(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	history := []map[string]string{{}} // history[v]: the state at version v
	block := maps.Clone(history[0])
	step := func(i int) {
		k := fmt.Sprintf("k%02d", rng.IntN(60))
		switch op := rng.IntN(10); {
		case op < 4:
			v := fmt.Sprintf("v%d", i)
			if err := s.Working().Set([]byte(k), []byte(v)); err != nil {
				t.Fatal(err)
			}
			block[k] = v
		case op < 5:
			if err := s.Working().Delete([]byte(k)); err != nil {
				t.Fatal(err)
			}
			delete(block, k)
		case op < 6:
			if _, _, err := s.Commit(); err != nil {
				t.Fatal(err)
			}
			history = append(history, maps.Clone(block))
		case op < 8:
			version := rng.Int64N(int64(len(history)))
			if version == 0 {
				return
			}
			view, err := s.At(version)
			if err != nil {
				t.Fatal(err)
			}
			got, err := view.Get([]byte(k))
			if v, ok := history[version][k]; err != nil || (got != nil) != ok || string(got) != v {
				t.Fatalf("step %d: version %d reads %s = %q (%v), want %q", i, version, k, got, err, v)
			}
		default:
			got, err := s.Working().Get([]byte(k))
			if v, ok := block[k]; err != nil || (got != nil) != ok || string(got) != v {
				t.Fatalf("step %d: working reads %s = %q (%v), want %q", i, k, got, err, v)
			}
		}
	}
	for i := range 3000 {
		step(i)
	}
	if _, _, err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	history = append(history, maps.Clone(block))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-s.keys.done
	if !s.keys.ready.Load() || s.keys.base != int64(len(history)-1) {
		t.Fatalf("filter ready %v at base %d, want ready at %d", s.keys.ready.Load(), s.keys.base, len(history)-1)
	}
	for i := 3000; i < 6000; i++ {
		step(i)
	}
	// The filter answers for keys never written, and never for a key present.
	latest := int64(len(history) - 1)
	if !s.keys.absent(latest, []byte("never-written")) {
		t.Fatal("the filter does not know a never-written key is absent")
	}
	for k := range history[latest] {
		if s.keys.absent(latest, []byte(k)) {
			t.Fatalf("the filter calls present key %s absent", k)
		}
	}
}
