package identity

import (
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Genesis is the identity part of the chain's genesis app state.
type Genesis struct {
	Accounts     []Account     `json:"accounts"`
	Registrars   []tx.Address  `json:"registrars"`
	Attestations []Attestation `json:"attestations,omitempty"`
}

// InitGenesis validates and loads the genesis identity state.
func InitGenesis(kv state.KV, g *Genesis) error {
	for i := range g.Accounts {
		a := g.Accounts[i]
		if tx.AddressOf(a.SigningKey) != a.Address {
			return codes.Errorf(codes.Invalid, "genesis account %s: address is not derived from its signing key", a.Address)
		}
		if a.Role != RoleRegistrar {
			m := Register{Role: a.Role, OrgKind: a.OrgKind, Name: a.Name, EncryptionKey: a.EncryptionKey}
			if err := m.Validate(); err != nil {
				return codes.Errorf(codes.Invalid, "genesis account %s: %v", a.Address, err)
			}
		}
		if _, err := GetAccount(kv, a.Address); err == nil {
			return codes.Errorf(codes.Invalid, "genesis account %s listed twice", a.Address)
		}
		a.Nonce, a.CreatedHeight = 0, 0
		if err := PutAccount(kv, &a); err != nil {
			return err
		}
		if err := listInDirectory(kv, &a); err != nil {
			return err
		}
	}
	if len(g.Registrars) == 0 {
		return codes.Errorf(codes.Invalid, "genesis names no registrar")
	}
	for _, r := range g.Registrars {
		if _, err := GetAccount(kv, r); err != nil {
			return codes.Errorf(codes.Invalid, "genesis registrar %s has no account", r)
		}
		if err := kv.Set(registrarKey(r), []byte{1}); err != nil {
			return err
		}
	}
	for i := range g.Attestations {
		a := g.Attestations[i]
		id, err := contracts.NextSeq(kv, attestationSeq)
		if err != nil {
			return err
		}
		a.ID = id
		if _, err := GetAccount(kv, a.Subject); err != nil {
			return codes.Errorf(codes.Invalid, "genesis attestation subject %s has no account", a.Subject)
		}
		if err := contracts.PutJSON(kv, AttestationKey(a.Subject, id), &a); err != nil {
			return err
		}
	}
	return nil
}
