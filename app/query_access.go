package app

import (
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/state"
)

// accessActive answers PathAccessActive: false for an absent record or version, like a refusal.
func accessActive(view *state.View, q *RecordsQuery) (bool, error) {
	rec, err := records.Get(view, q.ID)
	if err == nil && q.Version != 0 && q.Version != rec.Version {
		rec, err = records.GetVersion(view, q.ID, q.Version)
	}
	if codes.Of(err) == codes.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return records.AccessActive(view, q.Requester, q.Patient, q.Access, rec, q.At)
}

// Releasable is what a network key holder decides a key release on, all from one committed
// state: the record version, whether the cited access still lets the requester read it, the
// holder's share index in the current network key (0: it holds none) and the requester's
// encryption key (the share goes back sealed to it).
type Releasable struct {
	Record       *records.Record `json:"record"`
	Active       bool            `json:"active"`
	Index        uint32          `json:"index"`
	Epoch        uint64          `json:"epoch"` // of the network key the index belongs to
	RequesterKey []byte          `json:"requester_key,omitempty"`
}

// releasable answers PathReleasable: NotFound for a record version that does not exist or is
// not the patient's.
func releasable(view *state.View, q *RecordsQuery) (*Releasable, error) {
	rec, err := records.GetVersion(view, q.ID, q.Version)
	if err != nil {
		return nil, err
	}
	if rec.Patient != q.Patient {
		return nil, codes.Errorf(codes.NotFound, "record %s version %d not found", q.ID, q.Version)
	}
	out := &Releasable{Record: rec}
	if out.Active, err = records.AccessActive(view, q.Requester, q.Patient, q.Access, rec, q.At); err != nil || !out.Active {
		return out, err
	}
	key, err := network.GetKey(view)
	if codes.Of(err) == codes.NotFound {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if h := key.HolderOf(q.Node); h != nil {
		out.Index, out.Epoch = h.Index, key.Epoch
	}
	acc, err := identity.GetAccount(view, q.Requester)
	if err != nil {
		return nil, err
	}
	out.RequesterKey = acc.EncryptionKey
	return out, nil
}
