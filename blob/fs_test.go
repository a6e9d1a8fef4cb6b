package blob_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/blob/blobtest"
)

func TestFS(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := blob.OpenFS(filepath.Join(t.TempDir(), "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// A blob corrupted on disk is refused on read, not served.
func TestFSDetectsCorruption(t *testing.T) {
	dir := t.TempDir()
	s, _ := blob.OpenFS(dir)
	data := []byte("sealed bytes")
	h := blob.Of(data)
	if err := s.Put(context.Background(), h, data); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, h.String()[:2], h.String())
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("blob file: %v %v", st, err)
	}
	os.WriteFile(p, []byte("tampered bytes"), 0o600)
	if _, err := s.Get(context.Background(), h); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseHash(t *testing.T) {
	h := blob.Of([]byte("x"))
	if got, err := blob.ParseHash(h.String()); err != nil || got != h {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "zz", strings.Repeat("a", 63), "../../etc/passwd"} {
		if _, err := blob.ParseHash(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
