package network

import (
	"net/url"
	"slices"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// The network's threshold key (package netkey) on the ledger: the public key and commitments
// every reader checks shares against, and which member holds which share and where its node
// releases shares. Records' data keys are wrapped for it; members release decryption shares
// only for committed, still-valid accesses.

// MaxAPIBytes bounds a holder's release URL.
const MaxAPIBytes = 256

// Key is the network key as state holds it.
type Key struct {
	netkey.Public
	Holders []Holder `json:"holders"`
	Height  int64    `json:"height"`            // the height it took effect (0: genesis)
	Epoch   uint64   `json:"epoch"`             // 0 for a dealt genesis key, then the round that made it
	Dropped int      `json:"dropped,omitempty"` // holders removed since: their shares still work until a re-sharing
}

// Holder is a member holding share Index of the key.
type Holder struct {
	Index uint32     `json:"index"`
	Node  tx.Address `json:"node"` // the member's address (of its consensus key)
	API   string     `json:"api"`  // the base URL where its node serves POST /v1/keys/release
}

// Genesis is the network module's genesis state: a dealt key, or none, in which case the
// genesis validators generate one over the ledger in the first blocks (dkg.go). Generate asks
// the tools that write a genesis not to deal one.
type Genesis struct {
	Key      *Key `json:"key,omitempty"`
	Generate bool `json:"generate,omitempty"`
}

var keyStateKey = []byte(root + "key")

// KeyStateKey is the state key of the network key (for proofs).
func KeyStateKey() []byte { return keyStateKey }

// GetKey reads the network key.
func GetKey(r state.Reader) (*Key, error) {
	return contracts.Load[Key](r, keyStateKey, "the network has no threshold key")
}

// HolderOf returns node's holding, or nil.
func (k *Key) HolderOf(node tx.Address) *Holder {
	for i := range k.Holders {
		if k.Holders[i].Node == node {
			return &k.Holders[i]
		}
	}
	return nil
}

// Validate checks the key on its own: a valid netkey.Public, at least Threshold and at most
// netkey.MaxHolders holders with distinct indices and nodes, and an http(s) URL for each.
func (k *Key) Validate() error {
	if err := k.Public.Validate(); err != nil {
		return codes.Errorf(codes.Invalid, "network key: %v", err)
	}
	if len(k.Holders) < k.Threshold || len(k.Holders) > netkey.MaxHolders {
		return codes.Errorf(codes.Invalid, "a network key of threshold %d needs %d..%d holders, has %d", k.Threshold, k.Threshold, netkey.MaxHolders, len(k.Holders))
	}
	indices, nodes := map[uint32]bool{}, map[tx.Address]bool{}
	for _, h := range k.Holders {
		if err := h.Node.Validate(); err != nil {
			return err
		}
		if h.Index < 1 || indices[h.Index] || nodes[h.Node] {
			return codes.Errorf(codes.Invalid, "network key holders need distinct indices from 1 and distinct nodes")
		}
		indices[h.Index], nodes[h.Node] = true, true
		if err := validAPI(h.API); err != nil {
			return err
		}
	}
	return nil
}

func validAPI(s string) error {
	u, err := url.Parse(s)
	if err != nil || len(s) > MaxAPIBytes || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return codes.Errorf(codes.Invalid, "a holder's api must be an http(s) URL of at most %d bytes", MaxAPIBytes)
	}
	return nil
}

// InitKey sets the genesis network key; every holder must be a genesis member.
func InitKey(kv state.KV, k *Key) error {
	if err := k.Validate(); err != nil {
		return err
	}
	for _, h := range k.Holders {
		if _, err := GetMember(kv, h.Node); err != nil {
			return codes.Errorf(codes.Invalid, "network key holder %s is not a genesis validator", h.Node)
		}
	}
	return contracts.PutJSON(kv, keyStateKey, k)
}

// moveHolder hands a rotated member's share to its new address: the operator and its share file
// stay, only the consensus key changed.
func moveHolder(kv state.KV, from, to tx.Address) error {
	return updateHolders(kv, func(k *Key) bool {
		h := k.HolderOf(from)
		if h != nil {
			h.Node = to
		}
		return h != nil
	})
}

// dropHolder stops a removed member's releases: honest nodes and agents no longer count it. Its
// share stays mathematically valid until the re-sharing round the change opens completes (see
// dkg.go); the remaining holders must reach the threshold meanwhile.
func dropHolder(kv state.KV, node tx.Address) error {
	return updateHolders(kv, func(k *Key) bool {
		n := len(k.Holders)
		k.Holders = slices.DeleteFunc(k.Holders, func(h Holder) bool { return h.Node == node })
		k.Dropped += n - len(k.Holders)
		return len(k.Holders) != n
	})
}

func updateHolders(kv state.KV, change func(*Key) bool) error {
	k, err := GetKey(kv)
	if codes.Of(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if !change(k) {
		return nil
	}
	return contracts.PutJSON(kv, keyStateKey, k)
}
