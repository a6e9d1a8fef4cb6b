package coverage

import (
	"errors"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
)

// Depth is the registry tree's depth: room for 2^20 (about a million) credentials.
const Depth = 20

// Registry is the tree of valid credentials: leaf i is the hash of credential i's revocation id,
// or zero once revoked (and for the leaves not used yet). A node is the Poseidon2 compression of
// its children (one permutation: what the circuit checks the path with). It keeps only the
// non-empty nodes; an empty subtree's hash is known by its height.
type Registry struct {
	nodes map[nodeKey]fr.Element // non-default nodes by height and index (height 0: hashed leaves)
	leafs []fr.Element           // leaf values, by index
	index map[fr.Element]int     // leaf value -> index, for revocation
}

type nodeKey struct {
	height int
	index  uint64
}

// empty[h] is the hash of an empty subtree of height h.
var empty = func() [Depth + 1]fr.Element {
	var e [Depth + 1]fr.Element
	for h := 1; h <= Depth; h++ {
		e[h] = compress(e[h-1], e[h-1])
	}
	return e
}()

var permutation = poseidon2.NewDefaultPermutation()

// compress is a Merkle node: Poseidon2's two-to-one compression of its children.
func compress(left, right fr.Element) fr.Element {
	l, r := left.Bytes(), right.Bytes()
	out, err := permutation.Compress(l[:], r[:])
	if err != nil {
		panic(err) // cannot be: two canonical elements
	}
	var e fr.Element
	e.SetBytes(out)
	return e
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{nodes: map[nodeKey]fr.Element{}, index: map[fr.Element]int{}}
}

// ErrFull is an append to a full registry.
var ErrFull = errors.New("coverage: the credential registry is full")

// Add appends a credential's leaf and returns its index.
func (r *Registry) Add(leaf fr.Element) (int, error) {
	if len(r.leafs) >= 1<<Depth {
		return 0, ErrFull
	}
	if _, dup := r.index[leaf]; dup || leaf.IsZero() {
		return 0, errors.New("coverage: this leaf is in the registry already, or zero")
	}
	i := len(r.leafs)
	r.leafs = append(r.leafs, leaf)
	r.index[leaf] = i
	r.set(i, leaf)
	return i, nil
}

// Revoke empties the leaf of a credential (by its leaf value); false if it is not there.
func (r *Registry) Revoke(leaf fr.Element) bool {
	i, ok := r.index[leaf]
	if !ok {
		return false
	}
	delete(r.index, leaf)
	var zero fr.Element
	r.leafs[i] = zero
	r.set(i, zero)
	return true
}

func (r *Registry) node(h int, i uint64) fr.Element {
	if n, ok := r.nodes[nodeKey{h, i}]; ok {
		return n
	}
	return empty[h]
}

// set writes leaf i and the nodes above it.
func (r *Registry) set(i int, leaf fr.Element) {
	idx := uint64(i)
	r.put(0, idx, leaf)
	for h := 1; h <= Depth; h++ {
		idx /= 2
		r.put(h, idx, compress(r.node(h-1, 2*idx), r.node(h-1, 2*idx+1)))
	}
}

func (r *Registry) put(h int, i uint64, v fr.Element) {
	if v == empty[h] {
		delete(r.nodes, nodeKey{h, i})
		return
	}
	r.nodes[nodeKey{h, i}] = v
}

// Root is the registry's root.
func (r *Registry) Root() fr.Element { return r.node(Depth, 0) }

// Path is the proof that leaf i is in the tree: the sibling of each node on its way to the root,
// from the bottom.
func (r *Registry) Path(i int) ([Depth]fr.Element, error) {
	var p [Depth]fr.Element
	if i < 0 || i >= len(r.leafs) {
		return p, errors.New("coverage: no such leaf")
	}
	idx := uint64(i)
	for h := 0; h < Depth; h++ {
		p[h] = r.node(h, idx^1)
		idx /= 2
	}
	return p, nil
}

// IndexOf returns the index of a leaf still in the registry.
func (r *Registry) IndexOf(leaf fr.Element) (int, bool) {
	i, ok := r.index[leaf]
	return i, ok
}
