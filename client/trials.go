package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/medchain/medchain/contracts/records"
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
	return listAll[trials.Participation](ctx, c, "/v1/trials/"+url.PathEscape(id)+"/subjects", nil)
}

// TrialSubjectsPage returns one page of a trial's participations (see TrialSubjects) and the
// cursor of the next ("" after the last).
func (c *Client) TrialSubjectsPage(ctx context.Context, id, cursor string, limit int) ([]trials.Participation, string, error) {
	return listPage[trials.Participation](ctx, c, "/v1/trials/"+url.PathEscape(id)+"/subjects", nil, cursor, limit)
}

// TrialReadsPage returns one page of a trial's research reads (see TrialReads) and the cursor
// of the next ("" after the last).
func (c *Client) TrialReadsPage(ctx context.Context, id, cursor string, limit int) ([]records.AccessEvent, string, error) {
	return listPage[records.AccessEvent](ctx, c, "/v1/trials/"+url.PathEscape(id)+"/reads", nil, cursor, limit)
}

// TrialReads returns the research reads a trial's e-consents allowed (the participants' access
// events, oldest first); the node answers the sponsor and attested regulators (a signed read).
func (c *Client) TrialReads(ctx context.Context, id string) ([]records.AccessEvent, error) {
	return listAll[records.AccessEvent](ctx, c, "/v1/trials/"+url.PathEscape(id)+"/reads", nil)
}

// PatientTrials returns a patient's participations; the node answers the patient and its
// guardians (a signed read), anyone else an empty list.
func (c *Client) PatientTrials(ctx context.Context, patient tx.Address) ([]trials.Participation, error) {
	var out []trials.Participation
	return out, c.do(ctx, http.MethodGet, patientPath(patient, "trials"), nil, &out)
}
