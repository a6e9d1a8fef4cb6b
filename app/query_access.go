package app

import (
	"github.com/medchain/medchain/codes"
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
