package app

import (
	"encoding/json"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
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

// TrialReadQuery names what to list and who reads it.
type TrialReadQuery struct {
	Subject string     `json:"subject"`
	Reader  tx.Address `json:"reader"`
	At      time.Time  `json:"at"`
}

func queryTrialSubjects(view *state.View, data []byte) (*abci.ResponseQuery, error) {
	var q TrialReadQuery
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, codes.Errorf(codes.Malformed, "trial query: %v", err)
	}
	t, err := trials.Get(view, q.Subject)
	if codes.Of(err) == codes.NotFound {
		return jsonResp([]trials.Participation{}, nil)
	}
	if err != nil {
		return nil, err
	}
	may := q.Reader == t.Sponsor
	if !may {
		_, err := identity.RequireOrg(view, q.Reader, q.At, "regulator")
		may = err == nil
	}
	if !may {
		return jsonResp([]trials.Participation{}, nil)
	}
	return jsonResp(trials.Subjects(view, t.ID))
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
