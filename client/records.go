package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/tx"
)

// PutBlob uploads a ciphertext, signed by s, and returns its name.
func (c *Client) PutBlob(ctx context.Context, s *Signer, data []byte) (blob.Hash, error) {
	h := blob.Of(data)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.base+"/v1/blobs/"+h.String(), bytes.NewReader(data))
	if err != nil {
		return h, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	reqsig.Sign(req, s.ChainID, s.Address(), s.Key.Signing, data, time.Now())
	_, err = c.raw(req)
	return h, err
}

// GetBlob fetches a ciphertext with the signer's granted access event (patient, access).
func (c *Client) GetBlob(ctx context.Context, s *Signer, hash []byte, patient tx.Address, access uint64) ([]byte, error) {
	u := fmt.Sprintf("%s/v1/blobs/%s?patient=%s&access=%d", c.base, hex.EncodeToString(hash), url.QueryEscape(string(patient)), access)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	reqsig.Sign(req, s.ChainID, s.Address(), s.Key.Signing, nil, time.Now())
	return c.raw(req)
}

// raw sends req and returns the body of a 2xx answer, or an *Error.
func (c *Client) raw(req *http.Request) ([]byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, blob.MaxBytes+1<<10))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.URL.Path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, errorOf(resp.StatusCode, body)
	}
	return body, nil
}

// Record returns the latest version of a record's anchor.
func (c *Client) Record(ctx context.Context, id string) (*records.Record, error) {
	var r records.Record
	return &r, c.do(ctx, http.MethodGet, "/v1/records/"+url.PathEscape(id), nil, &r)
}

// History returns every version of a record's anchor.
func (c *Client) History(ctx context.Context, id string) ([]records.Record, error) {
	var r []records.Record
	return r, c.do(ctx, http.MethodGet, "/v1/records/"+url.PathEscape(id)+"/history", nil, &r)
}

// PatientRecords returns the latest version of each of a patient's record anchors.
func (c *Client) PatientRecords(ctx context.Context, patient tx.Address) ([]records.Record, error) {
	var r []records.Record
	return r, c.do(ctx, http.MethodGet, patientPath(patient, "records"), nil, &r)
}

// Recipients returns who must hold the key of a record that author adds to patient's category.
func (c *Client) Recipients(ctx context.Context, patient, author tx.Address, category string) ([]app.Recipient, error) {
	var r []app.Recipient
	q := url.Values{"author": {string(author)}, "category": {category}}
	return r, c.do(ctx, http.MethodGet, patientPath(patient, "recipients")+"?"+q.Encode(), nil, &r)
}

// AccessEvent returns one of a patient's access (audit) events.
func (c *Client) AccessEvent(ctx context.Context, patient tx.Address, id uint64) (*records.AccessEvent, error) {
	var e records.AccessEvent
	return &e, c.do(ctx, http.MethodGet, patientPath(patient, fmt.Sprintf("access/%d", id)), nil, &e)
}

// AuditFilter narrows an audit trail; zero fields match everything.
type AuditFilter struct {
	Requester tx.Address
	Category  string
	From, To  time.Time
}

// Audit returns a patient's access events that match f, oldest first.
func (c *Client) Audit(ctx context.Context, patient tx.Address, f AuditFilter) ([]records.AccessEvent, error) {
	q := url.Values{}
	if f.Requester != "" {
		q.Set("requester", string(f.Requester))
	}
	if f.Category != "" {
		q.Set("category", f.Category)
	}
	if !f.From.IsZero() {
		q.Set("from", f.From.UTC().Format(time.RFC3339))
	}
	if !f.To.IsZero() {
		q.Set("to", f.To.UTC().Format(time.RFC3339))
	}
	var e []records.AccessEvent
	return e, c.do(ctx, http.MethodGet, patientPath(patient, "audit")+"?"+q.Encode(), nil, &e)
}

// EmergencySessions returns a patient's break-glass sessions.
func (c *Client) EmergencySessions(ctx context.Context, patient tx.Address) ([]records.EmergencySession, error) {
	var s []records.EmergencySession
	return s, c.do(ctx, http.MethodGet, patientPath(patient, "emergency"), nil, &s)
}

// Feed returns a patient's notifications.
func (c *Client) Feed(ctx context.Context, patient tx.Address) ([]records.Notification, error) {
	var n []records.Notification
	return n, c.do(ctx, http.MethodGet, patientPath(patient, "feed"), nil, &n)
}

// Grants returns a patient's consent grants, revoked and expired included.
func (c *Client) Grants(ctx context.Context, patient tx.Address) ([]consent.Grant, error) {
	var g []consent.Grant
	return g, c.do(ctx, http.MethodGet, patientPath(patient, "grants"), nil, &g)
}

// Affiliations returns a practitioner's organization affiliations.
func (c *Client) Affiliations(ctx context.Context, practitioner tx.Address) ([]identity.Affiliation, error) {
	var a []identity.Affiliation
	return a, c.do(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(string(practitioner))+"/affiliations", nil, &a)
}

func patientPath(p tx.Address, rest string) string {
	return "/v1/patients/" + url.PathEscape(string(p)) + "/" + rest
}
