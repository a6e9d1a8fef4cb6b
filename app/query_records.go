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

// Records query paths. Their data is a RecordsQuery in JSON.
const (
	PathRecord     = "/records/record"     // id: the latest version
	PathHistory    = "/records/history"    // id: every version
	PathRecordList = "/records/list"       // patient: the latest version of each record
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
	At        time.Time  `json:"at,omitzero"`
	From      time.Time  `json:"from,omitzero"`
	To        time.Time  `json:"to,omitzero"`
}

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
		return jsonResp(records.History(view, q.ID))
	case PathRecordList:
		return jsonResp(records.List(view, q.Patient))
	case PathRecordBlob:
		return jsonResp(records.ByBlob(view, q.Hash))
	case PathRecipients:
		list, err := records.Recipients(view, q.Patient, q.Author, q.Category, q.At)
		if err != nil {
			return nil, err
		}
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
		all, err := records.AccessEvents(view, q.Patient)
		if err != nil {
			return nil, err
		}
		out := make([]records.AccessEvent, 0, len(all))
		for _, e := range all {
			if (q.Requester == "" || e.Requester == q.Requester) && (q.Category == "" || e.Category == q.Category) &&
				(q.From.IsZero() || !e.Time.Before(q.From)) && (q.To.IsZero() || e.Time.Before(q.To)) {
				out = append(out, e)
			}
		}
		return jsonResp(out, nil)
	case PathEmergency:
		return jsonResp(records.EmergencySessions(view, q.Patient))
	case PathFeed:
		return jsonResp(records.Notifications(view, q.Patient))
	case PathSettings:
		return jsonResp(records.GetSettings(view, q.Patient))
	case PathFetchable:
		return jsonResp(records.Fetchable(view, q.Requester, q.Patient, q.Access, q.Hash, q.At))
	case PathAccessActive:
		return jsonResp(accessActive(view, q))
	case PathFetches:
		return jsonResp(records.FetchEvents(view, q.Patient))
	}
	return nil, codes.Errorf(codes.UnknownType, "unknown query path %q", path)
}
