// Package snapshot makes, keeps and restores state-sync snapshots: a committed version of the
// app's Merkle state, exported node by node (state.Exporter), cut into chunks that CometBFT
// carries from node to node, and imported again into an empty store (state.Restore).
//
// Format 1. A chunk is a gzip stream of length-delimited protobuf messages, one per tree node
// in export order:
//
//	message Node { bytes key = 1; bytes value = 2; int64 version = 3; sint32 height = 4; }
//
// Chunks are cut after ChunkBytes of uncompressed messages, so the cut depends only on the
// content. The snapshot's metadata is
//
//	message Metadata { repeated bytes chunk_hashes = 1; } // SHA-256 of each chunk, in order
//
// and its hash is the SHA-256 of the metadata. Every node exports the same nodes at the same
// height, so every node's snapshot of that height is byte-identical and peers can serve chunks
// of one snapshot interchangeably.
package snapshot

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/medchain/medchain/state"
)

// Format is the only snapshot format this version makes and restores.
const Format uint32 = 1

// Limits. CometBFT carries a snapshot's metadata in a message of at most 4 MB and a chunk in one
// of at most 16 MB.
const (
	// ChunkBytes is where a chunk is cut: after this many uncompressed bytes.
	ChunkBytes = 8 << 20
	// MaxChunks bounds a snapshot's chunks (its metadata is 34 bytes per chunk).
	MaxChunks = 100_000
	// MaxChunkBytes bounds a chunk's uncompressed size when restoring.
	MaxChunkBytes = 64 << 20
	// maxChunkWire bounds a chunk as received.
	maxChunkWire = 16_000_000
)

// Snapshot describes one snapshot, as CometBFT lists and offers it.
type Snapshot struct {
	Height   uint64
	Format   uint32
	Chunks   uint32
	Hash     []byte
	Metadata []byte
}

// Node message field numbers.
const (
	fieldKey     protowire.Number = 1
	fieldValue   protowire.Number = 2
	fieldVersion protowire.Number = 3
	fieldHeight  protowire.Number = 4
	fieldChunk   protowire.Number = 1 // Metadata.chunk_hashes
)

// appendNode appends n as a length-delimited Node message.
func appendNode(b []byte, n *state.Node) []byte {
	var m []byte
	m = protowire.AppendTag(m, fieldKey, protowire.BytesType)
	m = protowire.AppendBytes(m, n.Key)
	if n.Value != nil {
		m = protowire.AppendTag(m, fieldValue, protowire.BytesType)
		m = protowire.AppendBytes(m, n.Value)
	}
	m = protowire.AppendTag(m, fieldVersion, protowire.VarintType)
	m = protowire.AppendVarint(m, uint64(n.Version))
	m = protowire.AppendTag(m, fieldHeight, protowire.VarintType)
	m = protowire.AppendVarint(m, protowire.EncodeZigZag(int64(n.Height)))
	b = protowire.AppendVarint(b, uint64(len(m)))
	return append(b, m...)
}

// errBadNode is wrapped by every decoding error of a chunk's content.
var errBadNode = errors.New("malformed snapshot node")

// readNodes decodes a chunk's uncompressed messages, calling fn for each node.
func readNodes(b []byte, fn func(*state.Node) error) error {
	for len(b) > 0 {
		size, n := protowire.ConsumeVarint(b)
		if n < 0 || size > uint64(len(b)-n) {
			return fmt.Errorf("%w: bad length", errBadNode)
		}
		msg := b[n : n+int(size)]
		b = b[n+int(size):]
		node, err := parseNode(msg)
		if err != nil {
			return err
		}
		if err := fn(node); err != nil {
			return err
		}
	}
	return nil
}

func parseNode(m []byte) (*state.Node, error) {
	node := &state.Node{}
	var seen [5]bool
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 || num < fieldKey || num > fieldHeight || seen[num] {
			return nil, fmt.Errorf("%w: unexpected field", errBadNode)
		}
		seen[num] = true
		m = m[n:]
		switch {
		case (num == fieldKey || num == fieldValue) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(m)
			if n < 0 {
				return nil, fmt.Errorf("%w: bad bytes field", errBadNode)
			}
			if num == fieldKey {
				node.Key = v
			} else {
				node.Value = v
			}
			m = m[n:]
		case (num == fieldVersion || num == fieldHeight) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(m)
			if n < 0 {
				return nil, fmt.Errorf("%w: bad varint field", errBadNode)
			}
			if num == fieldVersion {
				if v > 1<<62 {
					return nil, fmt.Errorf("%w: version out of range", errBadNode)
				}
				node.Version = int64(v)
			} else {
				h := protowire.DecodeZigZag(v)
				if h < 0 || h > 127 {
					return nil, fmt.Errorf("%w: height out of range", errBadNode)
				}
				node.Height = int8(h)
			}
			m = m[n:]
		default:
			return nil, fmt.Errorf("%w: field %d has wire type %d", errBadNode, num, typ)
		}
	}
	if !seen[fieldKey] || !seen[fieldVersion] || !seen[fieldHeight] {
		return nil, fmt.Errorf("%w: missing field", errBadNode)
	}
	if node.Height == 0 && node.Value == nil {
		node.Value = []byte{} // a leaf always has a value, possibly empty
	}
	return node, nil
}

// compress gzips one chunk. The writer has no name or time in its header, so equal content
// gives equal bytes.
func compress(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decompress gunzips a chunk, refusing more than MaxChunkBytes.
func decompress(chunk []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(chunk))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadNode, err)
	}
	raw, err := io.ReadAll(io.LimitReader(r, MaxChunkBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadNode, err)
	}
	if len(raw) > MaxChunkBytes {
		return nil, fmt.Errorf("%w: a chunk inflates beyond %d bytes", errBadNode, MaxChunkBytes)
	}
	return raw, nil
}

// encodeMetadata encodes the chunk hashes as a Metadata message.
func encodeMetadata(hashes [][sha256.Size]byte) []byte {
	var m []byte
	for _, h := range hashes {
		m = protowire.AppendTag(m, fieldChunk, protowire.BytesType)
		m = protowire.AppendBytes(m, h[:])
	}
	return m
}

// decodeMetadata decodes a Metadata message.
func decodeMetadata(m []byte) ([][sha256.Size]byte, error) {
	var out [][sha256.Size]byte
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 || num != fieldChunk || typ != protowire.BytesType {
			return nil, errors.New("malformed snapshot metadata")
		}
		m = m[n:]
		v, n := protowire.ConsumeBytes(m)
		if n < 0 || len(v) != sha256.Size {
			return nil, errors.New("malformed snapshot metadata: a chunk hash is not SHA-256")
		}
		m = m[n:]
		if len(out) == MaxChunks {
			return nil, fmt.Errorf("snapshot metadata lists more than %d chunks", MaxChunks)
		}
		out = append(out, [sha256.Size]byte(v))
	}
	return out, nil
}
