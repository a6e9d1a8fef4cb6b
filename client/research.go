package client

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/contracts/research"
	"github.com/medchain/medchain/contracts/telemed"
	"github.com/medchain/medchain/tx"
)

func studyPath(id string) string { return "/v1/research/studies/" + url.PathEscape(id) }

// Study returns a registered study (public).
func (c *Client) Study(ctx context.Context, id string) (*research.Study, error) {
	var s research.Study
	return &s, c.do(ctx, http.MethodGet, studyPath(id), nil, &s)
}

// StudyContributions returns a round's contributions (public: tags, counts, hashes).
func (c *Client) StudyContributions(ctx context.Context, id string, round int) ([]research.Contribution, error) {
	return listAll[research.Contribution](ctx, c, studyPath(id)+"/rounds/"+strconv.Itoa(round)+"/contributions", nil)
}

// StudyDatasets returns a study's declared datasets (public).
func (c *Client) StudyDatasets(ctx context.Context, id string) ([]research.Dataset, error) {
	return listAll[research.Dataset](ctx, c, studyPath(id)+"/datasets", nil)
}

// StudySources returns where a round's contributions are (patients and records); the node
// answers the study and attested regulators (a signed read), anyone else an empty list.
func (c *Client) StudySources(ctx context.Context, id string, round int) ([]research.Source, error) {
	return listAll[research.Source](ctx, c, studyPath(id)+"/rounds/"+strconv.Itoa(round)+"/sources", nil)
}

// PatientResearch returns a patient's research consents and contributions; the node answers the
// patient and its guardians (a signed read).
func (c *Client) PatientResearch(ctx context.Context, patient tx.Address) (*app.PatientResearch, error) {
	var out app.PatientResearch
	return &out, c.do(ctx, http.MethodGet, patientPath(patient, "research"), nil, &out)
}

// StudyReads returns the research reads of a study (the contributors' access events, oldest
// first); the node answers the study and attested regulators (a signed read).
func (c *Client) StudyReads(ctx context.Context, id string) ([]records.AccessEvent, error) {
	return listAll[records.AccessEvent](ctx, c, studyPath(id)+"/reads", nil)
}

// Consultations returns a patient's telemedicine consultations; the node answers the patient
// and its guardians (all), and a practitioner (its own) (a signed read).
func (c *Client) Consultations(ctx context.Context, patient tx.Address) ([]telemed.Consultation, error) {
	var out []telemed.Consultation
	return out, c.do(ctx, http.MethodGet, patientPath(patient, "consultations"), nil, &out)
}

// Care returns a patient's care coordination as the reader sees it (a signed read; see
// app.PathCare).
func (c *Client) Care(ctx context.Context, patient tx.Address) (*app.CareView, error) {
	var out app.CareView
	return &out, c.do(ctx, http.MethodGet, patientPath(patient, "care"), nil, &out)
}

// Program returns a program and, for a patient (a signed read by the patient, a guardian or the
// program's sponsor), its enrollment and whether key (if any) is one of its devices' keys.
func (c *Client) Program(ctx context.Context, id string, patient tx.Address, key []byte) (*app.ProgramView, error) {
	q := url.Values{}
	if patient != "" {
		q.Set("patient", string(patient))
	}
	if key != nil {
		q.Set("key", hex.EncodeToString(key))
	}
	var out app.ProgramView
	return &out, c.do(ctx, http.MethodGet, "/v1/programs/"+url.PathEscape(id)+"?"+q.Encode(), nil, &out)
}
