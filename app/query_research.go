package app

import (
	"encoding/json"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/contracts/research"
	"github.com/medchain/medchain/contracts/telemed"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Research paths (data: ResearchQuery). A study, its rounds' contributions and its declared
// datasets are public; the sources of its contributions (patients and records) answer its owner
// (once a round reaches k, those not withdrawn) and attested regulators; a patient's research consents and contributions answer the patient
// and its guardians. Anyone else gets an empty list, as for a study or patient without any.
const (
	PathStudy              = "/research/study"
	PathStudyContributions = "/research/contributions"
	PathStudyDatasets      = "/research/datasets"
	PathStudySources       = "/research/sources"
	PathStudyReads         = "/research/reads"
	PathPatientResearch    = "/research/patient"
	// PathConsultations answers a patient's consultations (data: ResearchQuery's Patient and
	// Reader): all of them to the patient and its guardians, its own to a practitioner.
	PathConsultations = "/telemed/consultations"
)

// ResearchQuery names a study (and round) or a patient, its reader, and a list's page.
type ResearchQuery struct {
	Study   string     `json:"study,omitempty"`
	Round   int        `json:"round,omitempty"`
	Patient tx.Address `json:"patient,omitempty"`
	Reader  tx.Address `json:"reader,omitempty"`
	At      time.Time  `json:"at,omitzero"`
	Page    Page       `json:"page,omitzero"`
}

// PatientResearch is a patient's research consents and contributions.
type PatientResearch struct {
	Consents      []research.Consent `json:"consents"`
	Contributions []research.Source  `json:"contributions"`
}

func researchQuery(data []byte) (*ResearchQuery, error) {
	var q ResearchQuery
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, codes.Errorf(codes.Malformed, "research query: %v", err)
	}
	if len(q.Study) > research.MaxIDBytes || q.Round < 0 {
		return nil, codes.Errorf(codes.Invalid, "a study id is 1..%d characters, a round 1 or more", research.MaxIDBytes)
	}
	return &q, nil
}

func queryResearch(view *state.View, path string, data []byte) (*abci.ResponseQuery, error) {
	q, err := researchQuery(data)
	if err != nil {
		return nil, err
	}
	switch path {
	case PathStudy:
		return jsonResp(research.Get(view, q.Study))
	case PathStudyContributions:
		return pageResp(listPage[research.Contribution](view, research.ContributionPrefix(q.Study, q.Round), q.Page, nil))
	case PathStudyDatasets:
		return pageResp(listPage[research.Dataset](view, research.DatasetPrefix(q.Study), q.Page, nil))
	case PathStudySources, PathStudyReads:
		s, err := research.Get(view, q.Study)
		if err != nil && codes.Of(err) != codes.NotFound {
			return nil, err
		}
		if s == nil || q.Reader != s.Owner {
			if _, rerr := identity.RequireOrg(view, q.Reader, q.At, "regulator"); s == nil || rerr != nil {
				return pageResp([]struct{}{}, "", nil)
			}
		}
		if path == PathStudySources {
			// The study sees a round's sources once the round reaches k, and those still in it;
			// a regulator sees them all.
			if q.Reader == s.Owner && s.Contributors[q.Round] < s.K() {
				return pageResp([]research.Source{}, "", nil)
			}
			keep := func(src *research.Source) (bool, bool) {
				if q.Reader != s.Owner {
					return true, false
				}
				c, err := research.GetContribution(view, s.ID, src.Round, src.Tag)
				return err == nil && !c.Withdrawn, false
			}
			return pageResp(scopedPage(view, research.SourcePrefix(s.ID, q.Round), q.Page, keep))
		}
		refs, next, err := listPage[research.Read](view, research.ReadPrefix(s.ID), q.Page, nil)
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
	case PathConsultations:
		return jsonResp(telemed.Visible(view, q.Patient, q.Reader))
	case PathPatientResearch:
		acc, err := identity.GetAccount(view, q.Patient)
		out := PatientResearch{Consents: []research.Consent{}, Contributions: []research.Source{}}
		if err != nil || (q.Reader != q.Patient && !acc.HasGuardian(q.Reader)) {
			return jsonResp(out, nil)
		}
		if out.Consents, err = contracts.List[research.Consent](view, research.ConsentPrefix(q.Patient)); err != nil {
			return nil, err
		}
		if out.Contributions, err = research.Sources(view, q.Patient); err != nil {
			return nil, err
		}
		return jsonResp(out, nil)
	}
	return nil, codes.Errorf(codes.NotFound, "no query %s", path)
}
