package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/trials"
)

// getTrial answers GET /v1/trials/{id}: a registered trial, public (versions and approvals,
// site counts, batches, results and the outcome-switching flag; no participant).
func (s *server) getTrial(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" || len(id) > trials.MaxIDBytes {
		writeCodeErr(w, codes.Invalid, "a trial id is 1..64 characters")
		return
	}
	s.listQuery(w, r, app.PathTrial, []byte(id))
}

// trialBatches answers GET /v1/trials/{id}/batches: one page of the trial's anchored batches
// (hash, site, who, when), public.
func (s *server) trialBatches(w http.ResponseWriter, r *http.Request) {
	page, ok := pageParams(w, r)
	if !ok {
		return
	}
	data, _ := json.Marshal(app.TrialBatchesQuery{Trial: r.PathValue("id"), Page: page})
	s.listQuery(w, r, app.PathTrialBatches, data)
}

// trialSubjects answers GET /v1/trials/{id}/subjects: one page of the participations, to a
// signed read by the trial's sponsor or an attested regulator (anyone else: an empty list).
func (s *server) trialSubjects(w http.ResponseWriter, r *http.Request) {
	s.trialRead(w, r, app.PathTrialSubjects, r.PathValue("id"))
}

// trialReads answers GET /v1/trials/{id}/reads: one page of the research reads the trial's
// e-consents allowed (the patients' access events), to the same readers as its subjects.
func (s *server) trialReads(w http.ResponseWriter, r *http.Request) {
	s.trialRead(w, r, app.PathTrialReads, r.PathValue("id"))
}

// patientTrials answers GET /v1/patients/{addr}/trials: the patient's participations, to a
// signed read by the patient or a guardian (anyone else: an empty list).
func (s *server) patientTrials(w http.ResponseWriter, r *http.Request) {
	a, ok := s.address(w, r)
	if !ok {
		return
	}
	s.trialRead(w, r, app.PathPatientTrials, string(a))
}

func (s *server) trialRead(w http.ResponseWriter, r *http.Request, path, subject string) {
	reader, ok := s.reader(w, r)
	if !ok {
		return
	}
	if len(subject) > trials.MaxIDBytes {
		writeCodeErr(w, codes.Invalid, "a trial id is 1..64 characters")
		return
	}
	page, ok := pageParams(w, r)
	if !ok {
		return
	}
	data, _ := json.Marshal(app.TrialReadQuery{Subject: subject, Reader: reader, At: time.Now(), Page: page})
	s.listQuery(w, r, path, data)
}
