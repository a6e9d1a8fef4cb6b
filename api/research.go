package api

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/research"
	"github.com/medchain/medchain/tx"
)

// Research reads (see app.PathStudy...):
//
//	GET /v1/research/studies/{id}                                   public
//	GET /v1/research/studies/{id}/rounds/{round}/contributions      public, paged
//	GET /v1/research/studies/{id}/datasets                          public, paged
//	GET /v1/research/studies/{id}/rounds/{round}/sources            signed: the study, regulators; paged
//	GET /v1/research/studies/{id}/reads                             signed: the study, regulators; paged
//	GET /v1/patients/{addr}/research                                signed: the patient, guardians
//	GET /v1/patients/{addr}/consultations                           signed: the patient, guardians, its practitioners
//	GET /v1/patients/{addr}/care                                    signed: the patient, guardians, the care team (app.PathCare)
func (s *server) researchRoutes(mux *http.ServeMux) {
	s.route(mux, "GET /v1/research/studies/{id}", s.researchRead(app.PathStudy, false, false))
	s.route(mux, "GET /v1/research/studies/{id}/rounds/{round}/contributions", s.researchRead(app.PathStudyContributions, true, false))
	s.route(mux, "GET /v1/research/studies/{id}/datasets", s.researchRead(app.PathStudyDatasets, true, false))
	s.route(mux, "GET /v1/research/studies/{id}/rounds/{round}/sources", s.researchRead(app.PathStudySources, true, true))
	s.route(mux, "GET /v1/research/studies/{id}/reads", s.researchRead(app.PathStudyReads, true, true))
	s.route(mux, "GET /v1/patients/{addr}/research", s.patientRead(app.PathPatientResearch))
	s.route(mux, "GET /v1/patients/{addr}/consultations", s.patientRead(app.PathConsultations))
	s.route(mux, "GET /v1/patients/{addr}/care", s.patientRead(app.PathCare))
	s.route(mux, "GET /v1/programs/{id}", s.program)
}

// researchRead answers a study's reads; signed ones name their reader to the query.
func (s *server) researchRead(path string, paged, signed bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := app.ResearchQuery{Study: r.PathValue("id"), At: time.Now()}
		if q.Study == "" || len(q.Study) > research.MaxIDBytes {
			writeCodeErr(w, codes.Invalid, "a study id is 1..64 characters")
			return
		}
		if v := r.PathValue("round"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				writeCodeErr(w, codes.Invalid, "a round is a number from 1")
				return
			}
			q.Round = n
		}
		if paged {
			page, ok := pageParams(w, r)
			if !ok {
				return
			}
			q.Page = page
		}
		if signed {
			reader, ok := s.reader(w, r)
			if !ok {
				return
			}
			q.Reader = reader
		}
		data, _ := json.Marshal(q)
		s.listQuery(w, r, path, data)
	}
}

// patientRead answers a signed read of a patient's research (consents and contributions: the
// patient and guardians) or consultations (also the practitioner, its own); anyone else gets
// empty lists.
func (s *server) patientRead(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.address(w, r)
		if !ok {
			return
		}
		reader, ok := s.reader(w, r)
		if !ok {
			return
		}
		data, _ := json.Marshal(app.ResearchQuery{Patient: a, Reader: reader, At: time.Now()})
		s.listQuery(w, r, path, data)
	}
}

// program answers GET /v1/programs/{id}[?patient=&key=]: the program, and with a signed read
// the patient's enrollment and whether a device key (hex) is the patient's (app.PathProgram).
func (s *server) program(w http.ResponseWriter, r *http.Request) {
	q := app.ProgramQuery{Program: r.PathValue("id")}
	if len(q.Program) == 0 || len(q.Program) > 64 {
		writeCodeErr(w, codes.Invalid, "a program id is 1..64 bytes")
		return
	}
	if p := r.URL.Query().Get("patient"); p != "" {
		q.Patient = tx.Address(p)
		if err := q.Patient.Validate(); err != nil {
			writeCodeErr(w, codes.Invalid, err.Error())
			return
		}
		reader, ok := s.reader(w, r)
		if !ok {
			return
		}
		q.Reader = reader
		if k := r.URL.Query().Get("key"); k != "" {
			key, err := hex.DecodeString(k)
			if err != nil || len(key) != 32 {
				writeCodeErr(w, codes.Invalid, "key is an ed25519 public key in hex")
				return
			}
			q.Key = key
		}
	}
	data, _ := json.Marshal(q)
	s.listQuery(w, r, app.PathProgram, data)
}
