// Package notary is the ledger's document notarization (issue 14): any registered account
// submits hashes of documents, many per transaction; at the end of each block the hashes
// notarized in it become the leaves of one Merkle tree (RFC 6962 hashing, CometBFT's
// crypto/merkle), whose root is stored in state under the block's height. A document's proof
// is then its leaf's path to that root, the root's state proof to the app hash, and the
// header that commits the app hash: checkable offline, trusting no node.
package notary

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"time"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// TypeNotarize notarizes document hashes.
const TypeNotarize = "notary/notarize"

// Hash algorithms, and the byte that names each in a leaf.
const (
	SHA256 = "sha256"
	SHA512 = "sha512"
)

var algs = map[string]struct {
	id   byte
	size int
}{SHA256: {1, sha256.Size}, SHA512: {2, sha512.Size}}

// MaxDigests bounds the hashes one transaction notarizes (1,000 SHA-512 hashes fit a
// transaction with room to spare).
const MaxDigests = 1000

// Notarize notarizes Digests: the hashes of documents under Alg, concatenated.
type Notarize struct {
	Alg     string `json:"alg"`
	Digests []byte `json:"digests"`
}

// Split checks m and returns its digests one by one.
func (m *Notarize) Split() ([][]byte, error) {
	a, ok := algs[m.Alg]
	if !ok {
		return nil, codes.Errorf(codes.Invalid, "alg must be %s or %s", SHA256, SHA512)
	}
	n := len(m.Digests) / a.size
	if len(m.Digests)%a.size != 0 || n == 0 || n > MaxDigests {
		return nil, codes.Errorf(codes.Invalid, "digests must be 1..%d %s hashes of %d bytes, concatenated", MaxDigests, m.Alg, a.size)
	}
	out := make([][]byte, n)
	for i := range n {
		out[i] = m.Digests[i*a.size : (i+1)*a.size]
	}
	return out, nil
}

// Leaf is the Merkle leaf of a digest: its algorithm's byte, then the digest.
func Leaf(alg string, digest []byte) ([]byte, error) {
	a, ok := algs[alg]
	if !ok || len(digest) != a.size {
		return nil, fmt.Errorf("a %s digest is %d bytes", alg, a.size)
	}
	return append([]byte{a.id}, digest...), nil
}

// Block is what a block notarized: the root of its leaves' tree, and how many there are.
type Block struct {
	Height int64     `json:"height"`
	Time   time.Time `json:"time"`
	Root   []byte    `json:"root"`
	Count  int       `json:"count"`
}

// State keys. pending holds the leaves of the block being executed, per transaction; the
// counter is how many leaves it holds so far. Both are emptied at the end of the block.
var (
	prefixPending = []byte("nt/p/")
	keyCount      = []byte("nt/n")
	prefixRoot    = "nt/r/"
	prefixLeaves  = "nt/l/"
)

// RootKey is the state key of the Block notarized at height; proofs prove it.
func RootKey(height int64) []byte { return []byte(prefixRoot + contracts.SeqKey(uint64(height))) }

// LeavesKey is the state key of the leaves notarized at height, concatenated in order.
func LeavesKey(height int64) []byte { return []byte(prefixLeaves + contracts.SeqKey(uint64(height))) }

// RootPrefix is the key prefix of the blocks' roots, in height order.
func RootPrefix() []byte { return []byte(prefixRoot) }

// Precheck is the stateless check of a notarization, at admission.
func Precheck(raw json.RawMessage) error {
	var m Notarize
	if err := tx.DecodeMsg(raw, &m); err != nil {
		return err
	}
	_, err := m.Split()
	return err
}

// Handles reports whether typ is a notary transaction.
func Handles(typ string) bool { return typ == TypeNotarize }

// Deliver executes a notary transaction: its leaves join the block's, after those of earlier
// transactions; the event says at which index they start.
func Deliver(kv state.KV, ctx contracts.Context, typ string, raw json.RawMessage) ([]contracts.Event, error) {
	if typ != TypeNotarize {
		return nil, codes.Errorf(codes.UnknownType, "notary has no transaction %q", typ)
	}
	return contracts.Decode(notarize)(kv, ctx, raw)
}

func notarize(kv state.KV, ctx contracts.Context, m *Notarize) ([]contracts.Event, error) {
	digests, err := m.Split()
	if err != nil {
		return nil, err
	}
	first, err := count(kv)
	if err != nil {
		return nil, err
	}
	id := algs[m.Alg].id
	leaves := make([]byte, 0, len(digests)*(1+algs[m.Alg].size))
	for _, d := range digests {
		leaves = append(append(leaves, id), d...)
	}
	if err := kv.Set(append(append([]byte{}, prefixPending...), contracts.SeqKey(uint64(first))...), leaves); err != nil {
		return nil, codes.Errorf(codes.Internal, "write state: %v", err)
	}
	if err := kv.Set(keyCount, binary.BigEndian.AppendUint64(nil, uint64(first+len(digests)))); err != nil {
		return nil, codes.Errorf(codes.Internal, "write state: %v", err)
	}
	return []contracts.Event{contracts.NewEvent("notary.notarized", "height", strconv.FormatInt(ctx.Height, 10),
		"first", strconv.Itoa(first), "count", strconv.Itoa(len(digests)), "alg", m.Alg)}, nil
}

func count(r state.Reader) (int, error) {
	raw, err := r.Get(keyCount)
	if err != nil {
		return 0, codes.Errorf(codes.Internal, "read state: %v", err)
	}
	if len(raw) != 8 {
		return 0, nil
	}
	return int(binary.BigEndian.Uint64(raw)), nil
}

// EndBlock seals the block's notarized leaves: their tree's root and the leaves are stored
// under the block's height, and the pending ones are removed. A block that notarized nothing
// stores nothing.
func EndBlock(kv state.KV, ctx contracts.Context) ([]contracts.Event, error) {
	n, err := count(kv)
	if err != nil || n == 0 {
		return nil, err
	}
	var keys [][]byte
	all := make([]byte, 0, n*(1+sha256.Size))
	if err := kv.Iterate(prefixPending, func(k, v []byte) bool {
		keys = append(keys, append([]byte{}, k...))
		all = append(all, v...)
		return false
	}); err != nil {
		return nil, codes.Errorf(codes.Internal, "read state: %v", err)
	}
	leaves, err := SplitLeaves(all)
	if err != nil || len(leaves) != n {
		return nil, codes.Errorf(codes.Internal, "pending leaves: %d of %d (%v)", len(leaves), n, err)
	}
	b := Block{Height: ctx.Height, Time: ctx.Time, Root: merkle.HashFromByteSlices(leaves), Count: n}
	if err := contracts.PutJSON(kv, RootKey(ctx.Height), &b); err != nil {
		return nil, err
	}
	if err := kv.Set(LeavesKey(ctx.Height), all); err != nil {
		return nil, codes.Errorf(codes.Internal, "write state: %v", err)
	}
	for _, k := range append(keys, keyCount) {
		if err := kv.Delete(k); err != nil {
			return nil, codes.Errorf(codes.Internal, "write state: %v", err)
		}
	}
	return []contracts.Event{contracts.NewEvent("notary.sealed", "height", strconv.FormatInt(ctx.Height, 10),
		"root", fmt.Sprintf("%x", b.Root), "count", strconv.Itoa(n))}, nil
}

// SplitLeaves splits concatenated leaves (each its algorithm's byte, then the digest).
func SplitLeaves(all []byte) ([][]byte, error) {
	var out [][]byte
	for len(all) > 0 {
		size := 0
		switch all[0] {
		case algs[SHA256].id:
			size = sha256.Size
		case algs[SHA512].id:
			size = sha512.Size
		}
		if size == 0 || len(all) < 1+size {
			return nil, fmt.Errorf("malformed leaves at byte %d", len(out))
		}
		out, all = append(out, all[:1+size]), all[1+size:]
	}
	return out, nil
}

// Prove returns the Merkle proof of leaf index among leaves (all of a block's), as CometBFT's
// crypto/merkle proves it, computing only that leaf's path: its siblings' subtree hashes
// (crypto/merkle's HashFromByteSlices), O(n) hashing and O(log n) memory, where
// merkle.ProofsFromByteSlices would build every leaf's proof.
func Prove(leaves [][]byte, index int) (*merkle.Proof, error) {
	if index < 0 || index >= len(leaves) {
		return nil, fmt.Errorf("leaf %d of %d", index, len(leaves))
	}
	return &merkle.Proof{Total: int64(len(leaves)), Index: int64(index),
		LeafHash: merkle.HashFromByteSlices(leaves[index : index+1]), Aunts: aunts(leaves, index)}, nil
}

// aunts is the path of leaf index: the sibling subtrees' hashes from the leaf up (the split is
// RFC 6962's, the largest power of two below the size, as crypto/merkle splits).
func aunts(leaves [][]byte, index int) [][]byte {
	if len(leaves) <= 1 {
		return nil
	}
	k := 1 << (bits.Len(uint(len(leaves)-1)) - 1)
	if index < k {
		return append(aunts(leaves[:k], index), merkle.HashFromByteSlices(leaves[k:]))
	}
	return append(aunts(leaves[k:], index-k), merkle.HashFromByteSlices(leaves[:k]))
}
