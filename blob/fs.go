package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/medchain/medchain/fsutil"
)

// FS stores each blob in dir/<first 2 hex>/<hash>, written atomically (temp file, fsync,
// rename), mode 0600.
type FS struct{ dir string }

var _ Store = (*FS)(nil)

// OpenFS opens (creating, mode 0700) a filesystem blob store in dir.
func OpenFS(dir string) (*FS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	return &FS{dir: dir}, nil
}

func (f *FS) path(h Hash) string {
	s := h.String()
	return filepath.Join(f.dir, s[:2], s)
}

// Put implements Store.
func (f *FS) Put(_ context.Context, want Hash, data []byte) error {
	if err := check(want, data); err != nil {
		return err
	}
	p := f.path(want)
	if _, err := os.Stat(p); err == nil {
		return nil // content-addressed: the same name holds the same bytes
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("create blob dir: %w", err)
	}
	return fsutil.WriteFileAtomic(p, data, 0o600)
}

// Get implements Store.
func (f *FS) Get(_ context.Context, h Hash) ([]byte, error) {
	file, err := os.Open(f.path(h))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read blob: %w", err)
	}
	if err := check(h, data); err != nil {
		return nil, fmt.Errorf("stored blob %s is corrupt: %w", h, err)
	}
	return data, nil
}

// Has implements Store.
func (f *FS) Has(_ context.Context, h Hash) (bool, error) {
	_, err := os.Stat(f.path(h))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Delete implements Store.
func (f *FS) Delete(_ context.Context, h Hash) error {
	err := os.Remove(f.path(h))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete blob: %w", err)
	}
	return nil
}

// List implements Store. Temporary files of interrupted writes are skipped.
func (f *FS) List(ctx context.Context, fn func(Hash) error) error {
	return filepath.WalkDir(f.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		h, perr := ParseHash(d.Name())
		if perr != nil {
			return nil
		}
		return fn(h)
	})
}
