package snapshot

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/medchain/medchain/fsutil"
	"github.com/medchain/medchain/state"
)

// Store keeps snapshots in a directory, one sub-directory per height holding the metadata
// and the chunks ("metadata", "0", "1", ...). A snapshot is written under a temporary name
// and renamed into place when complete, so a crash never leaves a partial one listed.
// Its methods are safe for concurrent use.
type Store struct {
	dir string
	mu  sync.Mutex // serializes creation and pruning against listing
}

const (
	metadataFile = "metadata"
	tmpPrefix    = ".tmp-"
)

// Open opens (or creates) the store in dir and removes what an interrupted write left.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the snapshot directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read the snapshot directory: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("remove a partial snapshot: %w", err)
			}
		}
	}
	return &Store{dir: dir}, nil
}

// Source is what a snapshot is made from: one exported state version.
type Source interface {
	Version() int64
	Next() (*state.Node, error) // io.EOF after the last node
}

// Create writes a snapshot of src, cutting chunks after chunkBytes uncompressed bytes
// (ChunkBytes if 0). An existing snapshot of the same height is kept as it is.
func (s *Store) Create(src Source, chunkBytes int) (Snapshot, error) {
	if chunkBytes <= 0 {
		chunkBytes = ChunkBytes
	}
	height := src.Version()
	final := filepath.Join(s.dir, strconv.FormatInt(height, 10))
	if _, err := os.Stat(final); err == nil {
		return s.read(uint64(height))
	}
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix+strconv.FormatInt(height, 10)+"-")
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %d: %w", height, err)
	}
	defer os.RemoveAll(tmp) // nothing left after the rename
	var hashes [][sha256.Size]byte
	var raw []byte
	flush := func() error {
		if len(hashes) == MaxChunks {
			return fmt.Errorf("snapshot %d: more than %d chunks", height, MaxChunks)
		}
		chunk, err := compress(raw)
		if err != nil {
			return err
		}
		if err := writeSynced(filepath.Join(tmp, strconv.Itoa(len(hashes))), chunk); err != nil {
			return err
		}
		hashes = append(hashes, sha256.Sum256(chunk))
		raw = raw[:0]
		return nil
	}
	for {
		n, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Snapshot{}, fmt.Errorf("snapshot %d: %w", height, err)
		}
		raw = appendNode(raw, n)
		if len(raw) >= chunkBytes {
			if err := flush(); err != nil {
				return Snapshot{}, err
			}
		}
	}
	if len(raw) > 0 || len(hashes) == 0 {
		if err := flush(); err != nil {
			return Snapshot{}, err
		}
	}
	meta := encodeMetadata(hashes)
	if err := writeSynced(filepath.Join(tmp, metadataFile), meta); err != nil {
		return Snapshot{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Rename(tmp, final); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %d: %w", height, err)
	}
	if err := fsutil.SyncDir(s.dir); err != nil {
		return Snapshot{}, err
	}
	return describe(uint64(height), meta)
}

func describe(height uint64, meta []byte) (Snapshot, error) {
	hashes, err := decodeMetadata(meta)
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %d: %w", height, err)
	}
	sum := sha256.Sum256(meta)
	return Snapshot{Height: height, Format: Format, Chunks: uint32(len(hashes)), Hash: sum[:], Metadata: meta}, nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write snapshot file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write snapshot file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync snapshot file: %w", err)
	}
	return f.Close()
}

// heights lists the complete snapshots' heights, newest first.
func (s *Store) heights() ([]uint64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read the snapshot directory: %w", err)
	}
	var out []uint64
	for _, e := range entries {
		if h, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && e.IsDir() {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out, nil
}

// List returns the snapshots held, newest first.
func (s *Store) List() ([]Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	heights, err := s.heights()
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, 0, len(heights))
	for _, h := range heights {
		snap, err := s.read(h)
		if err != nil {
			return nil, err
		}
		out = append(out, snap)
	}
	return out, nil
}

func (s *Store) read(height uint64) (Snapshot, error) {
	meta, err := os.ReadFile(filepath.Join(s.dir, strconv.FormatUint(height, 10), metadataFile))
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %d: %w", height, err)
	}
	return describe(height, meta)
}

// Chunk returns chunk index of the snapshot at height in format, or an error for one not held.
func (s *Store) Chunk(height uint64, format, index uint32) ([]byte, error) {
	if format != Format {
		return nil, fmt.Errorf("snapshot format %d is not held", format)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, strconv.FormatUint(height, 10), strconv.FormatUint(uint64(index), 10)))
	if err != nil {
		return nil, fmt.Errorf("snapshot %d chunk %d: %w", height, index, err)
	}
	return b, nil
}

// Prune deletes all but the newest keep snapshots.
func (s *Store) Prune(keep int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	heights, err := s.heights()
	if err != nil {
		return err
	}
	for _, h := range heights[min(keep, len(heights)):] {
		if err := os.RemoveAll(filepath.Join(s.dir, strconv.FormatUint(h, 10))); err != nil {
			return fmt.Errorf("prune snapshot %d: %w", h, err)
		}
	}
	return nil
}
