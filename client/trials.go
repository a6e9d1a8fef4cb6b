package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/medchain/medchain/contracts/trials"
	"github.com/medchain/medchain/tx"
)

// Trial returns a registered trial (public).
func (c *Client) Trial(ctx context.Context, id string) (*trials.Trial, error) {
	var t trials.Trial
	return &t, c.do(ctx, http.MethodGet, "/v1/trials/"+url.PathEscape(id), nil, &t)
}

// TrialBatches returns a trial's anchored batches (public).
func (c *Client) TrialBatches(ctx context.Context, id string) ([]trials.Batch, error) {
	return listAll[trials.Batch](ctx, c, "/v1/trials/"+url.PathEscape(id)+"/batches", nil)
}

// TrialSubjects returns a trial's participations; the node answers its sponsor and attested
// regulators (a signed read), anyone else an empty list.
func (c *Client) TrialSubjects(ctx context.Context, id string) ([]trials.Participation, error) {
	var out []trials.Participation
	return out, c.do(ctx, http.MethodGet, "/v1/trials/"+url.PathEscape(id)+"/subjects", nil, &out)
}

// PatientTrials returns a patient's participations; the node answers the patient and its
// guardians (a signed read), anyone else an empty list.
func (c *Client) PatientTrials(ctx context.Context, patient tx.Address) ([]trials.Participation, error) {
	var out []trials.Participation
	return out, c.do(ctx, http.MethodGet, patientPath(patient, "trials"), nil, &out)
}
