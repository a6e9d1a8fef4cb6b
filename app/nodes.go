package app

import (
	"crypto/ed25519"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// initNodeAccounts gives every genesis validator an account of role node, keyed by its
// consensus public key: the node signs its fetch log (records/fetch_log) with it. Validators
// come in genesis order, so every node creates the same accounts.
func initNodeAccounts(kv state.KV, vals []abci.ValidatorUpdate, height int64) error {
	for _, v := range vals {
		pub := v.PubKey.GetEd25519()
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("validator key is not Ed25519")
		}
		addr := tx.AddressOf(pub)
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
	return nil
}
