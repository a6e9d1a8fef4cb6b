package state_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/medchain/medchain/state"
)

// fill commits n keys over several versions into s, so that nodes carry different versions.
func fill(t *testing.T, s *state.Store, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := s.Working().Set(fmt.Appendf(nil, "key/%05d", i), fmt.Appendf(nil, "value %d", i*i)); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			if err := s.Working().Delete(fmt.Appendf(nil, "key/%05d", i-10)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, err := s.Commit(); err != nil {
		t.Fatal(err)
	}
}

func exportAll(t *testing.T, s *state.Store, version int64) []*state.Node {
	t.Helper()
	exp, err := s.Export(version)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close()
	var out []*state.Node
	for {
		n, err := exp.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
}

// An exported version imported into an empty file store gives the same root, the same values,
// and survives a reopen; the source keeps committing meanwhile.
func TestExportRestoreRoundTrip(t *testing.T) {
	src := open(t)
	fill(t, src, 500)
	version, hash := src.LastCommit()
	nodes := exportAll(t, src, version)
	if err := src.Working().Set([]byte("later"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Commit(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	dst, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := dst.BeginRestore(version)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := r.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Finish(hash); err != nil {
		t.Fatal(err)
	}
	if v, h := dst.LastCommit(); v != version || string(h) != string(hash) {
		t.Fatalf("restored version %d hash %X, want %d %X", v, h, version, hash)
	}
	check := func(s *state.Store, wantLater bool) {
		t.Helper()
		view, err := s.At(0)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"key/00000", "key/00123", "key/00499"} {
			want, _ := mustView(t, src, version).Get([]byte(k))
			got, err := view.Get([]byte(k))
			if err != nil || string(got) != string(want) {
				t.Fatalf("%s = %q, want %q (%v)", k, got, want, err)
			}
		}
		if got, _ := view.Get([]byte("later")); (got != nil) != wantLater {
			t.Fatalf("key written after the exported version: %q", got)
		}
	}
	check(dst, false)
	// The restored store commits on top of the restored version.
	if err := dst.Working().Set([]byte("later"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if v, h, err := dst.Commit(); err != nil || v != version+1 || string(h) != string(mustView(t, src, version+1).Hash()) {
		t.Fatalf("commit after restore: version %d (%v), want %d with the source's hash", v, err, version+1)
	}
	dst.Close()
	again, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if v, _ := again.LastCommit(); v != version+1 {
		t.Fatalf("reopened at version %d, want %d", v, version+1)
	}
	check(again, true)
}

func mustView(t *testing.T, s *state.Store, version int64) *state.View {
	t.Helper()
	v, err := s.At(version)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A restore whose nodes do not hash to the trusted root leaves the store empty, and a new
// restore can start; so does an aborted one and one a crash interrupted.
func TestAttackRestoreWrongRoot(t *testing.T) {
	src := open(t)
	fill(t, src, 200)
	version, hash := src.LastCommit()
	nodes := exportAll(t, src, version)

	dir := t.TempDir()
	dst, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	restore := func(tamper bool) error {
		r, err := dst.BeginRestore(version)
		if err != nil {
			return err
		}
		for i, n := range nodes {
			if tamper && i == 3 && n.Height == 0 {
				n = &state.Node{Key: n.Key, Value: []byte("forged"), Version: n.Version, Height: 0}
			}
			if err := r.Add(n); err != nil {
				r.Abort()
				return err
			}
		}
		return r.Finish(hash)
	}
	if err := restore(true); !errors.Is(err, state.ErrRestoreInvalid) {
		t.Fatalf("a forged value restored: %v", err)
	}
	if v, _ := dst.LastCommit(); v != 0 {
		t.Fatalf("a rejected restore left version %d", v)
	}
	// A crash mid-import: the partial database is discarded on the next open.
	r, err := dst.BeginRestore(version)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[:len(nodes)/2] {
		if err := r.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	dst.Close()
	if dst, err = state.Open(dir); err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if v, _ := dst.LastCommit(); v != 0 {
		t.Fatalf("a crashed restore left version %d", v)
	}
	if _, err := os.Stat(filepath.Join(dir, "app.restore.db")); !os.IsNotExist(err) {
		t.Fatalf("the partial import survived the reopen: %v", err)
	}
	if err := restore(false); err != nil {
		t.Fatalf("restore after a rejected and a crashed one: %v", err)
	}
	if _, err := dst.BeginRestore(version); err == nil {
		t.Fatal("a store holding state accepted another restore")
	}
}
