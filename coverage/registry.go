package coverage

import (
	"errors"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
)

// Depth is the registry tree's depth: room for 2^20 (about a million) credentials.
const Depth = 20

// The registry of valid credentials is a sparse Merkle tree: leaf i is the hash of credential
// i's revocation id, or zero once revoked (and for the leaves not used yet). A node is the
// Poseidon2 compression of its children (one permutation: what the circuit checks the path
// with). Storage keeps only the non-empty nodes; an empty subtree's hash is known by its height.

// Nodes stores a tree's non-empty nodes by height (0: the leaves) and index.
type Nodes interface {
	// Node returns the node, or false when it is empty.
	Node(height int, index uint64) (fr.Element, bool, error)
	// SetNode stores a node; DeleteNode forgets one that became empty.
	SetNode(height int, index uint64, v fr.Element) error
	DeleteNode(height int, index uint64) error
}

// node reads a node of n, or the empty subtree's hash.
func node(n Nodes, h int, i uint64) (fr.Element, error) {
	v, ok, err := n.Node(h, i)
	if err != nil || !ok {
		return empty[h], err
	}
	return v, nil
}

// SetLeaf writes leaf i (zero empties it) and the nodes above it, and returns the new root.
func SetLeaf(n Nodes, i uint64, leaf fr.Element) (fr.Element, error) {
	if i >= 1<<Depth {
		return fr.Element{}, ErrFull
	}
	v := leaf
	for h := 0; ; h++ {
		var err error
		if v == empty[h] {
			err = n.DeleteNode(h, i)
		} else {
			err = n.SetNode(h, i, v)
		}
		if err != nil || h == Depth {
			return v, err
		}
		sibling, err := node(n, h, i^1)
		if err != nil {
			return v, err
		}
		if i%2 == 0 {
			v = compress(v, sibling)
		} else {
			v = compress(sibling, v)
		}
		i /= 2
	}
}

// RootOf is the tree's root.
func RootOf(n Nodes) (fr.Element, error) { return node(n, Depth, 0) }

// PathOf is the proof that leaf i is in the tree: the sibling of each node on its way to the
// root, from the bottom.
func PathOf(n Nodes, i uint64) ([Depth]fr.Element, error) {
	var p [Depth]fr.Element
	if i >= 1<<Depth {
		return p, errors.New("coverage: no such leaf")
	}
	for h := range Depth {
		var err error
		if p[h], err = node(n, h, i^1); err != nil {
			return p, err
		}
		i /= 2
	}
	return p, nil
}

// Registry is a registry held in memory (an insurer's or a test's copy; the ledger keeps its
// own in state).
type Registry struct {
	nodes memNodes
	leafs []fr.Element       // leaf values, by index
	index map[fr.Element]int // leaf value -> index, for revocation
}

type memNodes map[nodeKey]fr.Element

type nodeKey struct {
	height int
	index  uint64
}

func (m memNodes) Node(h int, i uint64) (fr.Element, bool, error) {
	v, ok := m[nodeKey{h, i}]
	return v, ok, nil
}

func (m memNodes) SetNode(h int, i uint64, v fr.Element) error {
	m[nodeKey{h, i}] = v
	return nil
}

func (m memNodes) DeleteNode(h int, i uint64) error {
	delete(m, nodeKey{h, i})
	return nil
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
	return &Registry{nodes: memNodes{}, index: map[fr.Element]int{}}
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
	_, err := SetLeaf(r.nodes, uint64(i), leaf)
	return i, err
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
	SetLeaf(r.nodes, uint64(i), zero) // memNodes never fails
	return true
}

// Root is the registry's root.
func (r *Registry) Root() fr.Element {
	root, _ := RootOf(r.nodes)
	return root
}

// Path is the proof that leaf i is in the tree: the sibling of each node on its way to the root,
// from the bottom.
func (r *Registry) Path(i int) ([Depth]fr.Element, error) {
	if i < 0 || i >= len(r.leafs) {
		return [Depth]fr.Element{}, errors.New("coverage: no such leaf")
	}
	return PathOf(r.nodes, uint64(i))
}

// IndexOf returns the index of a leaf still in the registry.
func (r *Registry) IndexOf(leaf fr.Element) (int, bool) {
	i, ok := r.index[leaf]
	return i, ok
}
