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
	Record *records.Record `json:"record"`
	Release
}

// Release is what every kind of key release is decided on besides the wrapped key itself:
// whether the requester may have it now, the holder's share index and key epoch (index 0: it
// holds none), and the requester's encryption key (the share goes back sealed to it).
type Release struct {
	Active       bool   `json:"active"`
	Index        uint32 `json:"index"`
	Epoch        uint64 `json:"epoch"` // of the network key the index belongs to
	RequesterKey []byte `json:"requester_key,omitempty"`
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
	return out, holding(view, q, &out.Release)
}

// holding fills in r's index and epoch at which q.Node holds a share of the network key (none
// without a network key, or for a node that holds none) and the requester's encryption key.
func holding(view *state.View, q *RecordsQuery, r *Release) error {
	key, err := network.GetKey(view)
	if codes.Of(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if h := key.HolderOf(q.Node); h != nil {
		r.Index, r.Epoch = h.Index, key.Epoch
	}
	acc, err := identity.GetAccount(view, q.Requester)
	if err != nil {
		return err
	}
	r.RequesterKey = acc.EncryptionKey
	return nil
}

// TagKeyReleasable is what a network key holder needs to decide a release of a patient's tag
// key: the key, and whether the requester stands in the patient's circle now (the patient, a
// guardian, an auditor, or an account that an active grant or break-glass session names).
type TagKeyReleasable struct {
	TagKey *records.TagKey `json:"tag_key"`
	Release
}

// tagKeyReleasable answers PathTagKeyReleasable: NotFound for a patient without a tag key.
func tagKeyReleasable(view *state.View, q *RecordsQuery) (*TagKeyReleasable, error) {
	k, err := records.GetTagKey(view, q.Patient)
	if err != nil {
		return nil, err
	}
	out := &TagKeyReleasable{TagKey: k}
	sc, err := readScope(view, q.Patient, q.Requester, q.At)
	if err != nil {
		return nil, err
	}
	if out.Active, err = sc.standing(); err != nil || !out.Active {
		return out, err
	}
	return out, holding(view, q, &out.Release)
}

// TextReleasable is what a network key holder needs to decide a release of an emergency
// session's sealed reason or review note: the text, and whether the requester may read it now
// (the patient's circle, the compliance scope, and for the reason the practitioner who gave it).
type TextReleasable struct {
	Text *records.SealedText `json:"text"`
	Release
}

// textReleasable answers PathTextReleasable: NotFound for a session or text that does not exist.
func textReleasable(view *state.View, q *RecordsQuery) (*TextReleasable, error) {
	s, err := records.GetEmergencySession(view, q.Patient, q.Access)
	if err != nil {
		return nil, err
	}
	out := &TextReleasable{}
	switch {
	case q.ID == records.TextReason:
		out.Text = s.SealedReason
	case q.ID == records.TextNote && s.Reviewed != nil:
		out.Text = s.Reviewed.SealedNote
	}
	if out.Text == nil {
		return nil, codes.Errorf(codes.NotFound, "no sealed %s in emergency session %d", q.ID, q.Access)
	}
	sc, err := readScope(view, q.Patient, q.Requester, q.At)
	if err != nil {
		return nil, err
	}
	out.Active = sc.full || (q.ID == records.TextReason && s.Practitioner == q.Requester)
	if !out.Active && q.Requester != "" {
		if out.Active, err = identity.HasScope(view, q.Requester, q.At, ScopeCompliance); err != nil {
			return nil, err
		}
	}
	if !out.Active {
		return out, nil
	}
	return out, holding(view, q, &out.Release)
}
