package app

import (
	"encoding/json"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/care"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/programs"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// PathCare answers a patient's care coordination (data: ResearchQuery's Patient, Reader and At):
// everything to the patient and its guardians; to a provider, the standing rules that name it as
// referrer, the referrals from or to it, and the tasks it owns or requested or whose Task record
// it may see (the care team); nothing to anyone else.
const PathCare = "/care/patient"

// CareView is a patient's care coordination as one reader sees it.
type CareView struct {
	Rules     []care.StandingRule `json:"rules"`
	Referrals []care.Referral     `json:"referrals"`
	Tasks     []care.Task         `json:"tasks"`
}

func queryCare(view *state.View, data []byte) (*abci.ResponseQuery, error) {
	var q ResearchQuery
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, codes.Errorf(codes.Malformed, "care query: %v", err)
	}
	out := CareView{Rules: []care.StandingRule{}, Referrals: []care.Referral{}, Tasks: []care.Task{}}
	sc, err := readScope(view, q.Patient, q.Reader, q.At)
	if err != nil {
		return nil, err
	}
	if q.Reader == "" {
		return jsonResp(out, nil)
	}
	rules, err := care.Rules(view, q.Patient)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		if sc.full || r.Referrer == q.Reader {
			out.Rules = append(out.Rules, r)
		}
	}
	refs, err := care.Referrals(view, q.Patient)
	if err != nil {
		return nil, err
	}
	for _, f := range refs {
		if sc.full || f.From == q.Reader || f.To == q.Reader {
			out.Referrals = append(out.Referrals, f)
		}
	}
	tasks, err := care.Tasks(view, q.Patient)
	if err != nil {
		return nil, err
	}
	for _, t := range tasks {
		ok := sc.full || t.Owner == q.Reader || t.Requester == q.Reader
		if !ok {
			if rec, err := records.Get(view, t.Record); err == nil {
				if ok, err = sc.record(rec); err != nil {
					return nil, err
				}
			}
		}
		if ok {
			out.Tasks = append(out.Tasks, t)
		}
	}
	return jsonResp(out, nil)
}

// PathProgram answers a program (public) and, for a patient (data: ProgramQuery), the patient's
// enrollment and whether a device key is the patient's, to the patient, its guardians and the
// program's sponsor (while the patient is enrolled); to anyone else only the program.
const PathProgram = "/programs/program"

// ProgramQuery names a program, a patient, a device key and the reader.
type ProgramQuery struct {
	Program string     `json:"program"`
	Patient tx.Address `json:"patient,omitempty"`
	Key     []byte     `json:"key,omitempty"`
	Reader  tx.Address `json:"reader,omitempty"`
}

// ProgramView is a program and what the reader may see of one patient in it.
type ProgramView struct {
	Program          *programs.Program    `json:"program"`
	Enrollment       *programs.Enrollment `json:"enrollment,omitempty"`
	DeviceRegistered bool                 `json:"device_registered,omitempty"`
}

func queryProgram(view *state.View, data []byte) (*abci.ResponseQuery, error) {
	var q ProgramQuery
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, codes.Errorf(codes.Malformed, "program query: %v", err)
	}
	p, err := programs.Get(view, q.Program)
	if err != nil {
		return nil, err
	}
	out := ProgramView{Program: p}
	if q.Patient == "" || q.Reader == "" {
		return jsonResp(out, nil)
	}
	e, err := programs.GetEnrollment(view, q.Program, q.Patient)
	if err != nil {
		return jsonResp(out, nil)
	}
	acc, err := identity.GetAccount(view, q.Patient)
	if err != nil {
		return jsonResp(out, nil)
	}
	if q.Reader != q.Patient && !acc.HasGuardian(q.Reader) && (q.Reader != p.Sponsor || e.Left) {
		return jsonResp(out, nil)
	}
	out.Enrollment = e
	if len(q.Key) > 0 {
		if out.DeviceRegistered, err = programs.DeviceRegistered(view, q.Patient, q.Key); err != nil {
			return nil, err
		}
	}
	return jsonResp(out, nil)
}
