package records

import (
	"slices"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Fetch audit. A node logs every ciphertext request and every key release request it answers
// for a known record, served or refused, durably before it answers, and commits its log to the ledger in batches
// (records/fetch_log, signed by the node's account). Each entry becomes a FetchEvent in the
// patient's audit trail. A batch must continue the node's log exactly where the ledger left
// it (First = last committed sequence + 1), so an entry is committed once, whatever the node
// resends after a crash.

// Unavailable is the outcome of a granted fetch whose ciphertext the node did not hold.
const Unavailable = "unavailable"

// KindKey marks a log entry of a key release: a network key holder's decryption share of the
// record's data key (an entry without a kind is a ciphertext fetch).
const KindKey = "key"

// KindQuery marks a log entry of a patient's metadata read for an account's audit scope alone
// (a regulator's or compliance officer's query): Record names the query, one of QueryNames.
const KindQuery = "query"

// KindTagKey marks a log entry of a release of the patient's tag key (its Record is
// TagKeyRecord); KindText one of an emergency session's sealed text (Record TextReason or
// TextNote, Access the session).
const (
	KindTagKey   = "tag_key"
	TagKeyRecord = "tag-key"
	KindText     = "emergency_text"
)

// QueryNames are the metadata queries a KindQuery entry names.
var QueryNames = []string{"record", "history", "records", "recipients", "access", "access-active",
	"audit", "emergency", "feed", "settings", "fetches", "grants", "state"}

// TypeFetchLog commits a node's fetch log entries.
const TypeFetchLog = "records/fetch_log"

// MaxFetchEntries bounds one batch.
const MaxFetchEntries = 256

// FetchEntry is one ciphertext request as the node that answered it saw it.
type FetchEntry struct {
	Requester tx.Address `json:"requester"`
	Patient   tx.Address `json:"patient"`
	Record    string     `json:"record"` // a record id, or for KindQuery the query's name
	Version   uint32     `json:"version"`
	Access    uint64     `json:"access,omitempty"` // the access event cited
	Kind      string     `json:"kind,omitempty"`   // "" (a ciphertext), KindKey (a key share), KindQuery or KindTagKey
	Outcome   string     `json:"outcome"`          // Granted (served), Denied or Unavailable
	Time      time.Time  `json:"time"`             // the node's clock when it answered
}

// FetchLog is a batch of a node's fetch log, entries First, First+1, ...
type FetchLog struct {
	First   uint64       `json:"first"`
	Entries []FetchEntry `json:"entries"`
}

// FetchEvent is a committed fetch log entry in a patient's audit trail.
type FetchEvent struct {
	ID      uint64     `json:"id"`
	Node    tx.Address `json:"node"`
	NodeSeq uint64     `json:"node_seq"`
	FetchEntry
	Height int64     `json:"height"`
	Logged time.Time `json:"logged"` // block time of the commit
}

func fetchPrefix(p tx.Address) []byte { return []byte(root + "f/" + string(p) + "/") }

// FetchHeadKey is the state key of the last sequence number of node's log on the ledger.
func FetchHeadKey(node tx.Address) []byte { return []byte(root + "fh/" + string(node)) }

var seqFetch = []byte(root + "seq/f")

// FetchLogHead returns the last sequence number of node's log committed to the ledger (0 if none).
func FetchLogHead(r state.Reader, node tx.Address) (uint64, error) {
	var n uint64
	_, err := contracts.GetJSON(r, FetchHeadKey(node), &n)
	return n, err
}

// FetchEvents lists a patient's committed fetch events, oldest first.
func FetchEvents(r state.Reader, patient tx.Address) ([]FetchEvent, error) {
	return list[FetchEvent](r, fetchPrefix(patient))
}

func fetchLog(kv state.KV, ctx contracts.Context, m *FetchLog) ([]contracts.Event, error) {
	node, err := identity.GetAccount(kv, ctx.Signer)
	if err != nil {
		return nil, err
	}
	if node.Role != identity.RoleNode {
		return nil, codes.Errorf(codes.Unauthorized, "only a node's account commits fetch logs")
	}
	if len(m.Entries) == 0 || len(m.Entries) > MaxFetchEntries {
		return nil, codes.Errorf(codes.Invalid, "a fetch log batch holds 1..%d entries", MaxFetchEntries)
	}
	head, err := FetchLogHead(kv, ctx.Signer)
	if err != nil {
		return nil, err
	}
	if m.First != head+1 {
		return nil, codes.Errorf(codes.Invalid, "fetch log continues at %d, batch starts at %d", head+1, m.First)
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		if err := validFetchEntry(e); err != nil {
			return nil, err
		}
		if _, err := patientAccount(kv, e.Patient); err != nil {
			return nil, err
		}
		id, err := contracts.NextSeq(kv, seqFetch)
		if err != nil {
			return nil, err
		}
		ev := FetchEvent{ID: id, Node: ctx.Signer, NodeSeq: m.First + uint64(i), FetchEntry: *e, Height: ctx.Height, Logged: ctx.Time}
		ev.Time = ev.Time.UTC()
		if err := contracts.PutJSON(kv, seqKey(fetchPrefix(e.Patient), id), &ev); err != nil {
			return nil, err
		}
	}
	last := m.First + uint64(len(m.Entries)) - 1
	return []contracts.Event{contracts.NewEvent("records.fetch_log", "node", string(ctx.Signer), "last", itoa(last))},
		contracts.PutJSON(kv, FetchHeadKey(ctx.Signer), last)
}

func validFetchEntry(e *FetchEntry) error {
	if err := e.Requester.Validate(); err != nil {
		return err
	}
	if err := ValidID(e.Record); err != nil {
		return err
	}
	switch e.Kind {
	case "", KindKey:
	case KindQuery:
		if !slices.Contains(QueryNames, e.Record) {
			return codes.Errorf(codes.Invalid, "a query entry names one of %v", QueryNames)
		}
	case KindTagKey:
		if e.Record != TagKeyRecord {
			return codes.Errorf(codes.Invalid, "a tag key entry names %q", TagKeyRecord)
		}
	case KindText:
		if e.Record != TextReason && e.Record != TextNote {
			return codes.Errorf(codes.Invalid, "an emergency text entry names %q or %q", TextReason, TextNote)
		}
	default:
		return codes.Errorf(codes.Invalid, "fetch kind must be empty, %q, %q, %q or %q", KindKey, KindQuery, KindTagKey, KindText)
	}
	if e.Outcome != Granted && e.Outcome != Denied && e.Outcome != Unavailable {
		return codes.Errorf(codes.Invalid, "fetch outcome must be %q, %q or %q", Granted, Denied, Unavailable)
	}
	return nil
}
