package insurance

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// State layout.
const (
	keyCoverageKeys = "insurance/coverage_keys"
	prefixInsurer   = "insurance/insurer/"  // <insurer>
	prefixNode      = "insurance/node/"     // <insurer>/<height>/<index>: 32 bytes
	prefixLeaf      = "insurance/leaf/"     // <insurer>/<leaf>
	prefixHandle    = "insurance/handle/"   // <insurer>/<revocation handle>: the leaf's hex
	prefixRoot      = "insurance/root/"     // <insurer>/<root>
	prefixRootSeq   = "insurance/rootseq/"  // <insurer>/<seq>: the root's hex
	prefixNonce     = "insurance/verified/" // <verifier>/<nonce>
)

// Insurer is an insurer's coverage key and the state of its registry.
type Insurer struct {
	Address tx.Address `json:"address"`
	Key     []byte     `json:"key"`
	// Leaves is how many credentials were ever issued (the next leaf's index).
	Leaves uint64 `json:"leaves"`
	// Revocations counts revoking transactions: roots from before the last one are not accepted.
	Revocations uint64 `json:"revocations"`
	Root        []byte `json:"root"`
	RootSeq     uint64 `json:"root_seq"` // the root's number among the registry's roots
	Registered  int64  `json:"registered_height"`
}

// Leaf is one issued credential's place in its insurer's registry.
type Leaf struct {
	Index   uint64 `json:"index"`
	Issued  int64  `json:"issued_height"`
	Revoked int64  `json:"revoked_height,omitempty"`
}

// rootRecord is one of an insurer's registry roots.
type rootRecord struct {
	Seq         uint64 `json:"seq"`
	Revocations uint64 `json:"revocations"` // the insurer's count when the root was made
}

// Verification is a proof of coverage a verifier recorded (keyed by verifier and nonce).
type Verification struct {
	Verifier tx.Address `json:"verifier"`
	Insurer  tx.Address `json:"insurer"`
	Account  tx.Address `json:"account"`
	Day      uint32     `json:"day"`
	Plans    []string   `json:"plans"`
	Height   int64      `json:"height"`
	Time     time.Time  `json:"time"`
}

func insurerKey(a tx.Address) []byte { return []byte(prefixInsurer + string(a)) }
func leafKey(a tx.Address, leaf fr.Element) []byte {
	return []byte(prefixLeaf + string(a) + "/" + hexOf(leaf))
}
func handleKey(a tx.Address, handle fr.Element) []byte {
	return []byte(prefixHandle + string(a) + "/" + hexOf(handle))
}
func rootKey(a tx.Address, root []byte) []byte {
	return []byte(prefixRoot + string(a) + "/" + hex.EncodeToString(root))
}
func rootSeqKey(a tx.Address, seq uint64) []byte {
	return []byte(prefixRootSeq + string(a) + "/" + contracts.SeqKey(seq))
}
func nonceKey(verifier tx.Address, nonce []byte) []byte {
	return []byte(prefixNonce + string(verifier) + "/" + hex.EncodeToString(nonce))
}

func hexOf(e fr.Element) string {
	b := e.Bytes()
	return hex.EncodeToString(b[:])
}

// element decodes a 32-byte canonical field element.
func element(field string, b []byte) (fr.Element, error) {
	var e fr.Element
	if len(b) != fr.Bytes {
		return e, codes.Errorf(codes.Invalid, "%s must be %d bytes", field, fr.Bytes)
	}
	if err := e.SetBytesCanonical(b); err != nil {
		return e, codes.Errorf(codes.Invalid, "%s is not a canonical field element", field)
	}
	return e, nil
}

// GetInsurer returns an insurer's registry state.
func GetInsurer(r state.Reader, a tx.Address) (*Insurer, error) {
	return contracts.Load[Insurer](r, insurerKey(a), "insurer %s has no coverage key", a)
}

// CoverageKeys returns the circuit keys genesis names, or a NotFound error on a chain without.
func CoverageKeys(r state.Reader) (*coverage.KeyHashes, error) {
	return contracts.Load[coverage.KeyHashes](r, []byte(keyCoverageKeys), "this chain's genesis names no coverage circuit keys")
}

// InitGenesis stores the coverage keys genesis names.
func InitGenesis(kv state.KV, g *Genesis) error {
	if g.CoverageKeys == nil {
		return nil
	}
	for _, h := range []string{g.CoverageKeys.ProvingKey, g.CoverageKeys.VerifyingKey} {
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			return codes.Errorf(codes.Invalid, "genesis coverage keys must be SHA-256 hashes in hex")
		}
	}
	return contracts.PutJSON(kv, []byte(keyCoverageKeys), g.CoverageKeys)
}

// nodes is an insurer's registry tree in state.
type nodes struct {
	r       state.Reader
	kv      state.KV // nil for reading
	insurer tx.Address
}

func (n nodes) key(h int, i uint64) []byte {
	return fmt.Appendf(nil, "%s%s/%02d/%016x", prefixNode, n.insurer, h, i)
}

func (n nodes) Node(h int, i uint64) (fr.Element, bool, error) {
	var e fr.Element
	raw, err := n.r.Get(n.key(h, i))
	if err != nil {
		return e, false, codes.Errorf(codes.Internal, "read state: %v", err)
	}
	if raw == nil {
		return e, false, nil
	}
	e.SetBytes(raw)
	return e, true, nil
}

func (n nodes) SetNode(h int, i uint64, v fr.Element) error {
	b := v.Bytes()
	return n.kv.Set(n.key(h, i), b[:])
}

func (n nodes) DeleteNode(h int, i uint64) error { return n.kv.Delete(n.key(h, i)) }

// Path is a credential's proof of membership in its insurer's registry, at the current root.
type Path struct {
	Index    uint64   `json:"index"`
	Siblings [][]byte `json:"siblings"` // coverage.Depth of them, from the bottom
	Root     []byte   `json:"root"`
}

// GetPath returns the path of a credential (by its leaf) still in the insurer's registry; a
// revoked or unknown credential is not found.
func GetPath(r state.Reader, insurer tx.Address, leafBytes []byte) (*Path, error) {
	leaf, err := element("leaf", leafBytes)
	if err != nil {
		return nil, err
	}
	ins, err := GetInsurer(r, insurer)
	if err != nil {
		return nil, err
	}
	l, err := contracts.Load[Leaf](r, leafKey(insurer, leaf), "no such credential in the registry")
	if err != nil {
		return nil, err
	}
	if l.Revoked != 0 {
		return nil, codes.Errorf(codes.NotFound, "no such credential in the registry")
	}
	siblings, err := coverage.PathOf(nodes{r: r, insurer: insurer}, l.Index)
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "registry path: %v", err)
	}
	p := &Path{Index: l.Index, Root: ins.Root}
	for _, s := range siblings {
		b := s.Bytes()
		p.Siblings = append(p.Siblings, b[:])
	}
	return p, nil
}

// GetVerification returns the verification a verifier recorded with a nonce.
func GetVerification(r state.Reader, verifier tx.Address, nonce []byte) (*Verification, error) {
	return contracts.Load[Verification](r, nonceKey(verifier, nonce), "no verification recorded with this nonce")
}
