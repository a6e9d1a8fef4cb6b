package app

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// initNodeAccounts makes every genesis validator a network member with an account of role node,
// keyed by its consensus public key: the node signs its fetch log (records/fetch_log) and its
// replication requests with it. Validators come in genesis order, so every node creates the
// same accounts.
func initNodeAccounts(kv state.KV, vals []abci.ValidatorUpdate, height int64) error {
	members := make([]network.Member, 0, len(vals))
	for i, v := range vals {
		pub := v.PubKey.GetEd25519()
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("validator key is not Ed25519")
		}
		addr := tx.AddressOf(pub)
		members = append(members, network.Member{Address: addr, PubKey: ed25519.PublicKey(pub), Power: v.Power,
			Name: "genesis validator " + strconv.Itoa(i), AddedHeight: height})
		if _, err := identity.GetAccount(kv, addr); codes.Of(err) != codes.NotFound {
			if err != nil {
				return err
			}
			continue // already in genesis
		}
		acc := identity.Account{Address: addr, Role: identity.RoleNode, Name: "node " + string(addr[:8]),
			SigningKey: ed25519.PublicKey(pub), CreatedHeight: height}
		if err := identity.PutAccount(kv, &acc); err != nil {
			return err
		}
	}
	return network.InitGenesis(kv, members)
}

// validatorUpdates collects the block's executed membership changes, in execution order, into
// CometBFT validator updates (a key changed twice in one block gets its last power).
func validatorUpdates(results []*abci.ExecTxResult) []abci.ValidatorUpdate {
	var out []abci.ValidatorUpdate
	index := map[string]int{}
	for _, res := range results {
		for _, e := range res.Events {
			if e.Type != network.UpdateEvent {
				continue
			}
			var key string
			var power int64 = -1
			for _, at := range e.Attributes {
				switch at.Key {
				case "pub_key":
					key = at.Value
				case "power":
					power, _ = strconv.ParseInt(at.Value, 10, 64)
				}
			}
			pub, err := base64.StdEncoding.DecodeString(key)
			if err != nil || len(pub) != ed25519.PublicKeySize || power < 0 {
				continue // the contract writes these events; a malformed one is impossible
			}
			if i, ok := index[key]; ok {
				out[i].Power = power
				continue
			}
			index[key] = len(out)
			out = append(out, abci.UpdateValidator(pub, power, ""))
		}
	}
	return out
}
