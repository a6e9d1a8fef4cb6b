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
	At        time.Time  `json:"at,omitzero"`
	From      time.Time  `json:"from,omitzero"`
	To        time.Time  `json:"to,omitzero"`
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
	case PathRecord:
		return jsonResp(records.Get(view, q.ID))
	case PathHistory:
		if err := records.ValidID(q.ID); err != nil {
			return nil, err
		}
		return pageResp(listPage[records.Record](view, recordsPrefix("v", q.ID), q.Page, nil))
	case PathRecordList:
		return pageResp(recordList(view, q))
	case PathRecordBlob:
		return jsonResp(records.ByBlob(view, q.Hash))
	case PathRecipients:
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
		return jsonResp(records.GetAccess(view, q.Patient, q.Access))
	case PathAudit:
		// Events are in id order, which is block order, so the trail ends at the first event at
		// or after To.
		return pageResp(listPage(view, recordsPrefix("a", string(q.Patient)), q.Page, func(e *records.AccessEvent) (bool, bool) {
			if !q.To.IsZero() && !e.Time.Before(q.To) {
				return false, true
			}
			return (q.Requester == "" || e.Requester == q.Requester) && (q.Category == "" || e.Category == q.Category) &&
				(q.From.IsZero() || !e.Time.Before(q.From)), false
		}))
	case PathEmergency:
		return pageResp(listPage[records.EmergencySession](view, recordsPrefix("e", string(q.Patient)), q.Page, nil))
	case PathFeed:
		return pageResp(listPage[records.Notification](view, recordsPrefix("n", string(q.Patient)), q.Page, nil))
	case PathSettings:
		return jsonResp(records.GetSettings(view, q.Patient))
	case PathFetchable:
		return jsonResp(records.Fetchable(view, q.Requester, q.Patient, q.Access, q.Hash, q.At))
	case PathAccessActive:
		return jsonResp(accessActive(view, q))
	case PathReleasable:
		return jsonResp(releasable(view, q))
	case PathFetches:
		return pageResp(listPage[records.FetchEvent](view, recordsPrefix("f", string(q.Patient)), q.Page, nil))
	}
	return nil, codes.Errorf(codes.UnknownType, "unknown query path %q", path)
}

// recordList answers one page of a patient's records (the latest version of each), reading
// only that page's anchors. Its cursor is the last record id.
func recordList(view *state.View, q *RecordsQuery) ([]records.Record, string, error) {
	if err := q.Patient.Validate(); err != nil {
		return nil, "", err
	}
	ids, next, err := pageKeys(view, recordsPrefix("p", string(q.Patient)), q.Page)
	if err != nil {
		return nil, "", err
	}
	out := make([]records.Record, 0, len(ids))
	for _, id := range ids {
		rec, err := records.Get(view, id)
		if err != nil {
			return nil, "", err
		}
		out = append(out, *rec)
	}
	return out, next, nil
}
