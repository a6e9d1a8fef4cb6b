package snapshot

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/medchain/medchain/state"
)

// Restore errors: the app answers CometBFT according to which one it gets.
var (
	// ErrChunkHash: a chunk is not the one the metadata names; fetch it again from another peer.
	ErrChunkHash = errors.New("snapshot chunk does not match its hash")
	// ErrBadSnapshot: the snapshot itself is unusable (its hash, metadata or content); try another.
	ErrBadSnapshot = errors.New("unusable snapshot")
)

// Restorer checks and decodes the chunks of one offered snapshot, in order, handing every node
// to a sink (state.Restore.Add).
type Restorer struct {
	hashes [][sha256.Size]byte
	next   uint32
	sink   func(*state.Node) error
}

// NewRestorer checks an offered snapshot's description: its format, that its hash is the hash
// of its metadata and that the metadata lists its chunks.
func NewRestorer(s Snapshot, sink func(*state.Node) error) (*Restorer, error) {
	if s.Format != Format {
		return nil, fmt.Errorf("%w: format %d, this node restores format %d", ErrBadSnapshot, s.Format, Format)
	}
	if sum := sha256.Sum256(s.Metadata); !bytes.Equal(sum[:], s.Hash) {
		return nil, fmt.Errorf("%w: its hash is not the hash of its metadata", ErrBadSnapshot)
	}
	hashes, err := decodeMetadata(s.Metadata)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if len(hashes) == 0 || uint32(len(hashes)) != s.Chunks {
		return nil, fmt.Errorf("%w: %d chunks announced, %d in its metadata", ErrBadSnapshot, s.Chunks, len(hashes))
	}
	return &Restorer{hashes: hashes, sink: sink}, nil
}

// Apply checks chunk index against the metadata and feeds its nodes to the sink. Chunks come in
// order; done is true after the last one.
func (r *Restorer) Apply(index uint32, chunk []byte) (done bool, err error) {
	if index != r.next {
		return false, fmt.Errorf("%w: chunk %d arrived, %d expected", ErrBadSnapshot, index, r.next)
	}
	if len(chunk) > maxChunkWire || sha256.Sum256(chunk) != r.hashes[index] {
		return false, fmt.Errorf("%w (chunk %d)", ErrChunkHash, index)
	}
	raw, err := decompress(chunk)
	if err != nil {
		return false, fmt.Errorf("%w: chunk %d: %v", ErrBadSnapshot, index, err)
	}
	if err := readNodes(raw, r.sink); err != nil {
		return false, fmt.Errorf("%w: chunk %d: %v", ErrBadSnapshot, index, err)
	}
	r.next++
	return int(r.next) == len(r.hashes), nil
}
