// Package records anchors patients' encrypted FHIR records on chain and enforces access to them.
// An anchor names the record's patient, author, resource type and category, the SHA-256 of its
// ciphertext (held off chain by nodes' blob stores), a salted commitment to the plaintext and
// the record's data key wrapped for exactly three holders: the patient, the author and the
// network's threshold key. Everyone else (grantees, guardians, emergency practitioners) gets the
// key from the validators, each of which releases its share only for a committed access event
// that is still valid (AccessActive). Every access request is decided here, by consent or by an
// open emergency (break-glass) session, and leaves an audit event whatever the outcome. Erasure
// drops every wrapped key and marks the anchor erased, so no validator releases for it again.
package records

import (
	"time"

	"github.com/medchain/medchain/tx"
)

// Record statuses.
const (
	StatusActive     = "active"
	StatusSuperseded = "superseded"
	StatusErased     = "erased"
)

// WrappedKey is a record's data key encrypted with HPKE to one recipient's X25519 key.
type WrappedKey struct {
	Recipient tx.Address `json:"recipient"`
	Wrapped   []byte     `json:"wrapped"`
}

// Receipt proves a transaction's completion: the block that holds it and its hash.
type Receipt struct {
	Height int64     `json:"height"`
	TxHash string    `json:"tx_hash"`
	Time   time.Time `json:"time"`
}

// Record is one version of an anchored record.
type Record struct {
	ID             string       `json:"id"`
	Version        uint32       `json:"version"`
	Patient        tx.Address   `json:"patient"`
	Author         tx.Address   `json:"author"`
	ResourceType   string       `json:"resource_type"`
	Category       string       `json:"category"`
	CiphertextHash []byte       `json:"ciphertext_hash"` // SHA-256, the blob's name
	Commitment     []byte       `json:"commitment,omitempty"`
	Size           int64        `json:"size"`
	Status         string       `json:"status"`
	Keys           []WrappedKey `json:"keys,omitempty"`    // the patient's and the author's
	Network        []byte       `json:"network,omitempty"` // the data key wrapped for the network key
	CreatedAt      time.Time    `json:"created_at"`
	Height         int64        `json:"height"`
	Erased         *Receipt     `json:"erased,omitempty"`
	// Purpose, Signature (the author's, of ProvenanceStatement) and TxHash (the anchoring
	// transaction's) are what a FHIR Provenance of the version shows.
	Purpose   string `json:"purpose,omitempty"`
	Signature []byte `json:"signature,omitempty"`
	TxHash    string `json:"tx_hash,omitempty"`
}

// KeyFor returns the data key wrapped for recipient, if any.
func (r *Record) KeyFor(recipient tx.Address) []byte {
	for _, k := range r.Keys {
		if k.Recipient == recipient {
			return k.Wrapped
		}
	}
	return nil
}

// SealContext is what the record's ciphertext and wrapped keys are bound to: a ciphertext or key
// moved to another record or version does not open.
func SealContext(chainID, id string, version uint32) []byte {
	return []byte("medchain/record/v1\n" + chainID + "\n" + id + "\n" + itoa(uint64(version)))
}

// Outcomes of an access request.
const (
	Granted = "granted"
	Denied  = "denied"
)

// AccessEvent is the audit event of one access request, granted or denied.
type AccessEvent struct {
	ID        uint64     `json:"id"`
	Patient   tx.Address `json:"patient"`
	Requester tx.Address `json:"requester"`
	Record    string     `json:"record,omitempty"` // a record id, or empty for a whole category
	Category  string     `json:"category"`
	Purpose   string     `json:"purpose"`
	Outcome   string     `json:"outcome"`
	Basis     string     `json:"basis,omitempty"` // "patient", "guardian", "grant", "consultation", "referral", "trial", "research", "emergency"
	Grant     uint64     `json:"grant,omitempty"`
	Trial     string     `json:"trial,omitempty"` // the trial whose e-consent allowed it
	Study     string     `json:"study,omitempty"` // the study whose contribution it reads
	// Consultation is the telemedicine consultation that opened it.
	Consultation uint64 `json:"consultation,omitempty"`
	// Referral is the referral (contracts/care) that opened it.
	Referral  uint64     `json:"referral,omitempty"`
	Emergency uint64     `json:"emergency,omitempty"` // the emergency session used
	Height    int64      `json:"height"`
	Time      time.Time  `json:"time"`
	Expires   *time.Time `json:"expires,omitempty"` // a granted access lets the requester fetch until then
	TxHash    string     `json:"tx_hash"`
}

// Covers reports whether a granted event lets its requester fetch rec at time t.
func (e *AccessEvent) Covers(rec *Record, t time.Time) bool {
	if e.Outcome != Granted || e.Expires == nil || !t.Before(*e.Expires) || rec.Patient != e.Patient ||
		rec.Status == StatusErased {
		return false
	}
	if e.Record != "" {
		return e.Record == rec.ID
	}
	return e.Category == rec.Category
}

// EmergencySession is a break-glass opening of a patient's emergency categories to one
// practitioner for a limited time.
type EmergencySession struct {
	ID           uint64      `json:"id"`
	Patient      tx.Address  `json:"patient"`
	Practitioner tx.Address  `json:"practitioner"`
	SealedReason *SealedText `json:"sealed_reason,omitempty"` // sealed for the patient's circle and the compliance scope
	OpenedAt     time.Time   `json:"opened_at"`
	Expires      time.Time   `json:"expires"`
	Height       int64       `json:"height"`
	// Orgs are the patient's emergency organizations the practitioner acted for when opening
	// the session; leaving all of them ends it.
	Orgs     []tx.Address `json:"orgs,omitempty"`
	Reviewed *Review      `json:"reviewed,omitempty"`
	Ended    *Ending      `json:"ended,omitempty"` // set when the session was ended before its expiry
}

// Ending says why and when a break-glass session was ended early.
type Ending struct {
	Reason string `json:"reason"`
	Receipt
}

// Review is the patient's or a compliance officer's sign-off of an emergency session.
type Review struct {
	By         tx.Address  `json:"by"`
	SealedNote *SealedText `json:"sealed_note,omitempty"`
	At         time.Time   `json:"at"`
	// Justified is the reviewer's finding; a session found not justified ends at once.
	Justified bool `json:"justified"`
}

// Settings are a patient's record preferences.
type Settings struct {
	EmergencyOptOut bool         `json:"emergency_opt_out,omitempty"`
	EmergencyOrgs   []tx.Address `json:"emergency_orgs,omitempty"` // get keys to emergency categories
}

// Notification is an entry in a patient's feed.
type Notification struct {
	ID     uint64     `json:"id"`
	Kind   string     `json:"kind"` // "emergency_access"
	Ref    uint64     `json:"ref"`  // the emergency session
	Actor  tx.Address `json:"actor"`
	Text   string     `json:"text"`
	Time   time.Time  `json:"time"`
	Height int64      `json:"height"`
}

// BlobRef locates the record version a ciphertext belongs to.
type BlobRef struct {
	Patient tx.Address `json:"patient"`
	ID      string     `json:"id"`
	Version uint32     `json:"version"`
}
