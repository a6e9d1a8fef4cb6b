package app

import (
	"encoding/json"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Records query paths. Their data is a RecordsQuery in JSON. The lists (history, list, audit,
// emergency, feed, fetches) answer one page each (see Page).
const (
	PathRecord     = "/records/record"     // id: the latest version
	PathHistory    = "/records/history"    // id: every version
	PathRecordList = "/records/list"       // patient: the latest version of each record, by id
	PathRecipients = "/records/recipients" // patient, author, category: who must hold the key
	PathAccess     = "/records/access"     // patient, access: one access event
	PathAudit      = "/records/audit"      // patient [, requester, category, from, to]: access events
	PathEmergency  = "/records/emergency"  // patient: emergency sessions
	PathFeed       = "/records/feed"       // patient: notifications
	PathSettings   = "/records/settings"   // patient
	PathFetchable  = "/records/fetchable"  // requester, patient, access, hash, at
	PathRecordBlob = "/records/blob"       // hash: the record version holding a ciphertext
	// PathAccessActive: requester, patient, access, id [, version], at: whether that access
	// event still lets its requester read the record (records.AccessActive).
	PathAccessActive = "/records/access_active"
	PathFetches      = "/records/fetches" // patient: committed fetch log entries (who got ciphertext)
	// PathReleasable: requester, patient, access, id, version, at, node: what a network key
	// holder needs to decide a key release, read from one committed state (Releasable).
	PathReleasable = "/records/releasable"
	// PathTagKeyReleasable: requester, patient, at, node: what a network key holder needs to
	// decide a release of the patient's tag key (TagKeyReleasable).
	PathTagKeyReleasable = "/records/tag_key_releasable"
	// PathTextReleasable: requester, patient, access (the emergency session), id (TextReason or
	// TextNote), at, node: what a holder needs to decide a release of a sealed text.
	PathTextReleasable = "/records/text_releasable"
)

// RecordsQuery carries the parameters of the records query paths.
type RecordsQuery struct {
	ID        string     `json:"id,omitempty"`
	Version   uint32     `json:"version,omitempty"` // 0 = the latest
	Patient   tx.Address `json:"patient,omitempty"`
	Author    tx.Address `json:"author,omitempty"`
	Requester tx.Address `json:"requester,omitempty"`
	Category  string     `json:"category,omitempty"`
	Access    uint64     `json:"access,omitempty"`
	Hash      []byte     `json:"hash,omitempty"`
	Node      tx.Address `json:"node,omitempty"`
	// Reader is the account a patient-scoped query is answered for (see query_scope.go); the
	// API sets it from the request's signature. Without one, such a query sees nothing.
	Reader tx.Address `json:"reader,omitempty"`
	At     time.Time  `json:"at,omitzero"`
	From   time.Time  `json:"from,omitzero"`
	To     time.Time  `json:"to,omitzero"`
	Page
}

// Key prefixes of the records lists, as laid out by contracts/records (store.go, fetchlog.go),
// which keeps them private: pages seek into them.
func recordsPrefix(kind string, owner string) []byte { return []byte("rc/" + kind + "/" + owner + "/") }

// Recipient is an account that must hold a record's key, with its encryption key.
type Recipient struct {
	Address       tx.Address `json:"address"`
	EncryptionKey []byte     `json:"encryption_key"`
}

func queryRecords(view *state.View, req *abci.RequestQuery) (*abci.ResponseQuery, bool, error) {
	if len(req.Path) < 9 || req.Path[:9] != "/records/" {
		return nil, false, nil
	}
	var q RecordsQuery
	if err := json.Unmarshal(req.Data, &q); err != nil {
		return nil, true, codes.Errorf(codes.Malformed, "records query: %v", err)
	}
	resp, err := recordsQuery(view, req.Path, &q)
	return resp, true, err
}

func recordsQuery(view *state.View, path string, q *RecordsQuery) (*abci.ResponseQuery, error) {
	if q.Patient != "" {
		if err := q.Patient.Validate(); err != nil {
			return nil, err
		}
	}
	switch path {
	case PathRecordBlob:
		return jsonResp(records.ByBlob(view, q.Hash))
	case PathFetchable:
		return jsonResp(records.Fetchable(view, q.Requester, q.Patient, q.Access, q.Hash, q.At))
	case PathReleasable:
		return jsonResp(releasable(view, q))
	case PathTagKeyReleasable:
		return jsonResp(tagKeyReleasable(view, q))
	case PathTextReleasable:
		return jsonResp(textReleasable(view, q))
	case PathRecord:
		rec, sc, err := recordScope(view, q.ID, q.Reader, q.At)
		return audited(sc)(jsonResp(rec, err))
	case PathHistory:
		if err := records.ValidID(q.ID); err != nil {
			return nil, err
		}
		_, sc, err := recordScope(view, q.ID, q.Reader, q.At)
		if codes.Of(err) == codes.NotFound {
			return pageResp([]records.Record{}, "", nil) // as for an id with no versions
		}
		if err != nil {
			return nil, err
		}
		return audited(sc)(pageResp(listPage[records.Record](view, recordsPrefix("v", q.ID), q.Page, nil)))
	}
	sc, err := readScope(view, q.Patient, q.Reader, q.At)
	if err != nil {
		return nil, err
	}
	return audited(sc)(patientQuery(view, path, q, sc))
}

// patientQuery answers the queries of one patient's metadata for the reader of sc.
func patientQuery(view *state.View, path string, q *RecordsQuery, sc *scope) (*abci.ResponseQuery, error) {
	switch path {
	case PathRecordList:
		return pageResp(recordList(view, q, sc))
	case PathRecipients:
		if ok, err := sc.author(q.Author, q.Category); err != nil {
			return nil, err
		} else if !ok {
			return nil, accountNotFound(q.Patient) // what an absent patient answers
		}
		list := records.Recipients(q.Patient, q.Author)
		out := make([]Recipient, 0, len(list))
		for _, a := range list {
			acc, err := identity.GetAccount(view, a)
			if err != nil {
				return nil, err
			}
			out = append(out, Recipient{Address: a, EncryptionKey: acc.EncryptionKey})
		}
		return jsonResp(out, nil)
	case PathAccess:
		ev, err := records.GetAccess(view, q.Patient, q.Access)
		if err == nil {
			if ok, nerr := sc.named(ev.Requester); nerr != nil || !ok {
				ev, err = nil, cmpErr(nerr, codes.Errorf(codes.NotFound, "access event %d not found", q.Access))
			}
		}
		return jsonResp(ev, err)
	case PathAccessActive:
		if ok, err := sc.named(q.Requester); err != nil || !ok || q.Requester == "" {
			return jsonResp(false, err) // what an absent access event answers
		}
		return jsonResp(accessActive(view, q))
	case PathAudit:
		requester := q.Requester
		if !sc.full {
			if requester != "" && requester != q.Reader || q.Reader == "" {
				return pageResp([]records.AccessEvent{}, "", nil)
			}
			requester = q.Reader // a grantee sees its own access events only
		}
		// Events are in id order, which is block order, so the trail ends at the first event at
		// or after To.
		page := listPage[records.AccessEvent]
		if !sc.full {
			page = scopedPage[records.AccessEvent]
		}
		return pageResp(page(view, recordsPrefix("a", string(q.Patient)), q.Page, func(e *records.AccessEvent) (bool, bool) {
			if !q.To.IsZero() && !e.Time.Before(q.To) {
				return false, true
			}
			return (requester == "" || e.Requester == requester) && (q.Category == "" || e.Category == q.Category) &&
				(q.From.IsZero() || !e.Time.Before(q.From)), false
		}))
	case PathEmergency:
		if !sc.full && q.Reader == "" {
			return pageResp([]records.EmergencySession{}, "", nil)
		}
		// A compliance officer reviews break-glass sessions: it sees every one of them, and its
		// read is logged like an auditor's.
		compliance := false
		if acc, err := identity.GetAccount(view, q.Patient); !sc.full && err == nil && acc.Role == identity.RolePatient {
			if compliance, err = identity.HasScope(view, q.Reader, q.At, ScopeCompliance); err != nil {
				return nil, err
			}
			sc.audited = compliance
		}
		return pageResp(scopedPage(view, recordsPrefix("e", string(q.Patient)), q.Page, func(e *records.EmergencySession) (bool, bool) {
			return sc.full || compliance || e.Practitioner == q.Reader, false // a practitioner sees its own sessions
		}))
	case PathFeed:
		if !sc.full {
			return pageResp([]records.Notification{}, "", nil)
		}
		return pageResp(listPage[records.Notification](view, recordsPrefix("n", string(q.Patient)), q.Page, nil))
	case PathSettings:
		if !sc.full {
			return jsonResp(&records.Settings{}, nil) // an absent patient's settings
		}
		return jsonResp(records.GetSettings(view, q.Patient))
	case PathFetches:
		if !sc.full {
			return pageResp([]records.FetchEvent{}, "", nil)
		}
		return pageResp(listPage[records.FetchEvent](view, recordsPrefix("f", string(q.Patient)), q.Page, nil))
	}
	return nil, codes.Errorf(codes.UnknownType, "unknown query path %q", path)
}

// audited marks the answer of a query read for an audit scope alone (AuditedRead).
func audited(sc *scope) func(*abci.ResponseQuery, error) (*abci.ResponseQuery, error) {
	return func(resp *abci.ResponseQuery, err error) (*abci.ResponseQuery, error) {
		if err == nil && sc != nil && sc.audited {
			resp.Log = logAuditedRead + string(sc.patient)
		}
		return resp, err
	}
}

// cmpErr is err if there is one, else refusal.
func cmpErr(err, refusal error) error {
	if err != nil {
		return err
	}
	return refusal
}

// accountNotFound is identity.GetAccount's answer for an absent account.
func accountNotFound(a tx.Address) error {
	return codes.Errorf(codes.NotFound, "account %s not found", a)
}

// recordList answers one page of a patient's records (the latest version of each) that the
// reader of sc may see, reading only that page's anchors (for a reader who sees them all) or up
// to MaxScopedScan of them. Its cursor is the last record id shown.
func recordList(view *state.View, q *RecordsQuery, sc *scope) ([]records.Record, string, error) {
	if err := q.Patient.Validate(); err != nil {
		return nil, "", err
	}
	limit, err := q.Page.limit()
	if err != nil {
		return nil, "", err
	}
	prefix := recordsPrefix("p", string(q.Patient))
	out := make([]records.Record, 0, min(limit, 64))
	var next string
	var ferr error
	scanned := 0
	err = view.IterateFrom(prefix, q.Page.start(prefix), func(k, _ []byte) bool {
		if len(out) == limit { // full, and more follow
			next = out[len(out)-1].ID
			return true
		}
		rec, err := records.Get(view, string(k[len(prefix):]))
		if err != nil {
			ferr = err
			return true
		}
		ok, err := sc.record(rec)
		if err != nil {
			ferr = err
			return true
		}
		if ok {
			out = append(out, *rec)
		}
		if scanned++; scanned >= MaxScopedScan && len(out) < limit {
			if len(out) > 0 {
				next = out[len(out)-1].ID
			}
			return true
		}
		return false
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return nil, "", codes.Errorf(codes.Of(err), "list: %v", err)
	}
	return out, next, nil
}
