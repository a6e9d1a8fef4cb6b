package app

import (
	"encoding/json"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/contracts/trials"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// PathTrial answers a registered trial (data: its id): public, like everything the trials
// module stores.
const PathTrial = "/trials/trial"

// PathTrialBatches answers one page of a trial's anchored batches (data: TrialBatchesQuery):
// public, the part of a regulator's trail besides the trial itself and its participants.
const PathTrialBatches = "/trials/batches"

// TrialBatchesQuery pages a trial's batches.
type TrialBatchesQuery struct {
	Trial string `json:"trial"`
	Page
}

func queryTrialBatches(view *state.View, data []byte) (*abci.ResponseQuery, error) {
	var q TrialBatchesQuery
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, codes.Errorf(codes.Malformed, "trial query: %v", err)
	}
	if q.Trial == "" || len(q.Trial) > trials.MaxIDBytes {
		return nil, codes.Errorf(codes.Invalid, "a trial id is 1..%d characters", trials.MaxIDBytes)
	}
	return pageResp(listPage[trials.Batch](view, trials.BatchPrefix(q.Trial), q.Page, nil))
}

func queryTrial(view *state.View, data []byte) (*abci.ResponseQuery, error) {
	return jsonResp(trials.Get(view, string(data)))
}

// Trial participation paths (data: TrialReadQuery). Participation is not public: a trial's
// subjects answer its sponsor and attested regulators; a patient's trials answer the patient
// and its guardians. Anyone else gets an empty list, as for a trial or patient without any.
const (
	PathTrialSubjects = "/trials/subjects" // Subject: the trial id
	PathPatientTrials = "/trials/patient"  // Subject: the patient's address
)

// PathTrialReads answers one page of a trial's research reads (data: TrialReadQuery, Subject
// the trial id): the access events its e-consents allowed, oldest first, to the trial's sponsor
// and attested regulators; anyone else gets an empty list.
const PathTrialReads = "/trials/reads"

// TrialReadQuery names what to list, who reads it and, for a trial's lists, the page.
type TrialReadQuery struct {
	Subject string     `json:"subject"`
	Reader  tx.Address `json:"reader"`
	At      time.Time  `json:"at"`
	Page    Page       `json:"page,omitzero"`
}

// trialOverseer decodes a trial list query and loads the trial if its reader is the trial's
// sponsor or an attested regulator (nil otherwise, or for an unknown trial).
func trialOverseer(view *state.View, data []byte) (*TrialReadQuery, *trials.Trial, error) {
	var q TrialReadQuery
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, nil, codes.Errorf(codes.Malformed, "trial query: %v", err)
	}
	t, err := trials.Get(view, q.Subject)
	if codes.Of(err) == codes.NotFound {
		return &q, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if q.Reader != t.Sponsor {
		if _, err := identity.RequireOrg(view, q.Reader, q.At, "regulator"); err != nil {
			return &q, nil, nil
		}
	}
	return &q, t, nil
}

func queryTrialSubjects(view *state.View, data []byte) (*abci.ResponseQuery, error) {
	q, t, err := trialOverseer(view, data)
	if err != nil || t == nil {
		return pageResp([]trials.Participation{}, "", err)
	}
	return pageResp(listPage[trials.Participation](view, trials.SubjectPrefix(t.ID), q.Page, nil))
}

func queryTrialReads(view *state.View, data []byte) (*abci.ResponseQuery, error) {
	q, t, err := trialOverseer(view, data)
	if err != nil || t == nil {
		return pageResp([]records.AccessEvent{}, "", err)
	}
	refs, next, err := listPage[trials.Read](view, trials.ReadPrefix(t.ID), q.Page, nil)
	if err != nil {
		return nil, err
	}
	out := make([]records.AccessEvent, 0, len(refs))
	for _, ref := range refs {
		ev, err := records.GetAccess(view, ref.Patient, ref.Access)
		if err != nil {
			return nil, err
		}
		out = append(out, *ev)
	}
	return pageResp(out, next, nil)
}

func queryPatientTrials(view *state.View, data []byte) (*abci.ResponseQuery, error) {
	var q TrialReadQuery
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, codes.Errorf(codes.Malformed, "trial query: %v", err)
	}
	patient := tx.Address(q.Subject)
	acc, err := identity.GetAccount(view, patient)
	if err != nil || (q.Reader != patient && !acc.HasGuardian(q.Reader)) {
		return jsonResp([]trials.Participation{}, nil)
	}
	return jsonResp(trials.PatientTrials(view, patient))
}
