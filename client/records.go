package client

import (
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
	"github.com/medchain/medchain/tx"
)

// PutBlob uploads a ciphertext, signed by s, and returns its name.
func (c *Client) PutBlob(ctx context.Context, s *Signer, data []byte) (blob.Hash, error) {
	h := blob.Of(data)
	_, err := c.signed(ctx, s, http.MethodPut, "/v1/blobs/"+h.String(), data, "application/octet-stream")
	return h, err
}

// GetBlob fetches a ciphertext with the signer's granted access event (patient, access).
func (c *Client) GetBlob(ctx context.Context, s *Signer, hash []byte, patient tx.Address, access uint64) ([]byte, error) {
	path := fmt.Sprintf("/v1/blobs/%s?patient=%s&access=%d", hex.EncodeToString(hash), url.QueryEscape(string(patient)), access)
	return c.signed(ctx, s, http.MethodGet, path, nil, "")
}

// signed sends a request signed by s (see send for when it goes to another node) and returns
// the body of a 2xx answer, or an *Error.
func (c *Client) signed(ctx context.Context, s *Signer, method, path string, body []byte, contentType string) ([]byte, error) {
	resp, err := c.send(ctx, c.http, method, path, body, contentType, s.sessions(), true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, blob.MaxBytes+1<<10))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, errorOf(resp.StatusCode, raw)
	}
	return raw, nil
}

// Settings returns a patient's settings (what the patient, a guardian or an auditor reads; anyone
// else reads the defaults, as for a patient that does not exist).
func (c *Client) Settings(ctx context.Context, patient tx.Address) (*records.Settings, error) {
	var s records.Settings
	return &s, c.do(ctx, http.MethodGet, "/v1/patients/"+url.PathEscape(string(patient))+"/settings", nil, &s)
}

// Record returns the latest version of a record's anchor.
func (c *Client) Record(ctx context.Context, id string) (*records.Record, error) {
	var r records.Record
	return &r, c.do(ctx, http.MethodGet, "/v1/records/"+url.PathEscape(id), nil, &r)
}

// History returns every version of a record's anchor, oldest first.
func (c *Client) History(ctx context.Context, id string) ([]records.Record, error) {
	return listAll[records.Record](ctx, c, "/v1/records/"+url.PathEscape(id)+"/history", nil)
}

// PatientRecords returns the latest version of each of a patient's record anchors, by id.
func (c *Client) PatientRecords(ctx context.Context, patient tx.Address) ([]records.Record, error) {
	return listAll[records.Record](ctx, c, patientPath(patient, "records"), nil)
}

// PatientRecordsPage returns one page of PatientRecords, from cursor ("" for the first page),
// at most limit (0 = the node's default) records, and the next page's cursor ("" after the
// last). The records list's cursor is the id of the last record of the page.
func (c *Client) PatientRecordsPage(ctx context.Context, patient tx.Address, cursor string, limit int) ([]records.Record, string, error) {
	return listPage[records.Record](ctx, c, patientPath(patient, "records"), nil, cursor, limit)
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
	return listAll[records.AccessEvent](ctx, c, patientPath(patient, "audit"), f.values())
}

// AuditPage returns one page of Audit (see PatientRecordsPage). A page of a filtered trail may
// hold fewer events than limit, even none, and still have a next page.
func (c *Client) AuditPage(ctx context.Context, patient tx.Address, f AuditFilter, cursor string, limit int) ([]records.AccessEvent, string, error) {
	return listPage[records.AccessEvent](ctx, c, patientPath(patient, "audit"), f.values(), cursor, limit)
}

func (f AuditFilter) values() url.Values {
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
	return q
}

// EmergencySessions returns a patient's break-glass sessions, oldest first.
func (c *Client) EmergencySessions(ctx context.Context, patient tx.Address) ([]records.EmergencySession, error) {
	return listAll[records.EmergencySession](ctx, c, patientPath(patient, "emergency"), nil)
}

// Feed returns a patient's notifications, oldest first.
func (c *Client) Feed(ctx context.Context, patient tx.Address) ([]records.Notification, error) {
	return listAll[records.Notification](ctx, c, patientPath(patient, "feed"), nil)
}

// Grants returns a patient's stored consent grants, revoked and expired included, by id.
func (c *Client) Grants(ctx context.Context, patient tx.Address) ([]consent.Grant, error) {
	return listAll[consent.Grant](ctx, c, patientPath(patient, "grants"), nil)
}

// GrantsTo returns the patients whose grants to the account are in force, with those grants;
// the node answers only the account itself (a signed read as grantee).
func (c *Client) GrantsTo(ctx context.Context, grantee tx.Address) ([]app.GrantsTo, error) {
	return listAll[app.GrantsTo](ctx, c, "/v1/accounts/"+url.PathEscape(string(grantee))+"/grants-to", nil)
}

// Directory returns the practitioners and organizations whose name contains name (all if
// empty) and whose role is role (any if empty), at most limit (1..app.MaxPageLimit) of them.
func (c *Client) Directory(ctx context.Context, name string, role identity.Role, limit int) ([]app.DirectoryEntry, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	if role != "" {
		q.Set("role", string(role))
	}
	entries, _, err := listPage[app.DirectoryEntry](ctx, c, "/v1/directory", q, "", limit)
	return entries, err
}

// GrantsPage returns one page of Grants (see PatientRecordsPage).
func (c *Client) GrantsPage(ctx context.Context, patient tx.Address, cursor string, limit int) ([]consent.Grant, string, error) {
	return listPage[consent.Grant](ctx, c, patientPath(patient, "grants"), nil, cursor, limit)
}

// Affiliations returns a practitioner's organization affiliations.
func (c *Client) Affiliations(ctx context.Context, practitioner tx.Address) ([]identity.Affiliation, error) {
	return listAll[identity.Affiliation](ctx, c, "/v1/accounts/"+url.PathEscape(string(practitioner))+"/affiliations", nil)
}

func patientPath(p tx.Address, rest string) string {
	return "/v1/patients/" + url.PathEscape(string(p)) + "/" + rest
}
