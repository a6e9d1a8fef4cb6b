package records

import (
	"encoding/hex"
	"strconv"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/tx"
)

// Transaction types.
const (
	TypeAnchor          = "records/anchor"
	TypeAnchorBatch     = "records/anchor_batch"
	TypeAccess          = "records/access"
	TypeErase           = "records/erase"
	TypeSettings        = "records/settings"
	TypeEmergencyOpen   = "records/emergency_open"
	TypeEmergencyReview = "records/emergency_review"
)

// Limits and defaults.
const (
	MaxIDBytes           = 64
	MaxBatchAnchors      = 50 // anchors in one records/anchor_batch
	MaxCiphertextBytes   = 8 << 20
	MaxRecipients        = 2 // the patient and the author; everyone else gets keys from the network
	MaxWrappedKeyBytes   = 1024
	MaxEmergencyOrgs     = 5
	MaxReasonBytes       = 512
	MinReasonBytes       = 10
	AccessTTL            = time.Hour      // how long a granted access event lets its requester fetch
	DefaultEmergencyTime = 24 * time.Hour // how long break-glass access lasts unless asked shorter
	MaxEmergencyTime     = 72 * time.Hour
)

// AnchorBatch anchors several records, or versions, in one transaction: all of them or, if any
// is refused, none (a FHIR transaction Bundle's writes). Each is checked as an Anchor, in order,
// seeing the ones before it.
type AnchorBatch struct {
	Anchors []Anchor `json:"anchors"`
}

// Anchor adds a record, or a new version of one (Version = latest + 1), for Patient.
type Anchor struct {
	ID             string       `json:"id"`
	Version        uint32       `json:"version"`
	Patient        tx.Address   `json:"patient"`
	ResourceType   string       `json:"resource_type"`
	Category       string       `json:"category"`
	Purpose        string       `json:"purpose,omitempty"` // the author's purpose of use; TREAT if empty
	CiphertextHash []byte       `json:"ciphertext_hash"`
	Commitment     []byte       `json:"commitment"`
	Size           int64        `json:"size"`
	Keys           []WrappedKey `json:"keys"`    // for the patient and the author
	Network        []byte       `json:"network"` // the data key wrapped for the network key (netkey.Wrap)
	// Signature, when set, is the author's Ed25519 signature of ProvenanceStatement: kept with
	// the record, it lets anyone who sees the anchor check who wrote what (a FHIR Provenance's
	// signature) without the transaction.
	Signature []byte `json:"signature,omitempty"`
}

// ProvenanceStatement is what an author signs for a record version: the chain, the record and
// version, its patient, the commitment to its content, the ciphertext's hash and the purpose.
func ProvenanceStatement(chainID string, m *Anchor) []byte {
	return []byte("medchain/provenance/v1\n" + chainID + "\n" + m.ID + "\n" + strconv.FormatUint(uint64(m.Version), 10) + "\n" +
		string(m.Patient) + "\n" + hex.EncodeToString(m.Commitment) + "\n" + hex.EncodeToString(m.CiphertextHash) + "\n" + m.Purpose)
}

// Validate checks the message on its own.
func (m *Anchor) Validate() error {
	if err := ValidID(m.ID); err != nil {
		return err
	}
	if err := m.Patient.Validate(); err != nil {
		return err
	}
	if err := validResourceType(m.ResourceType); err != nil {
		return err
	}
	if err := validCategory(m.Category); err != nil {
		return err
	}
	if m.Purpose != "" {
		if err := validPurpose(m.Purpose); err != nil {
			return err
		}
	}
	if len(m.CiphertextHash) != 32 || len(m.Commitment) != 32 {
		return codes.Errorf(codes.Invalid, "ciphertext_hash and commitment must be 32-byte SHA-256 digests")
	}
	if m.Size < 1 || m.Size > MaxCiphertextBytes {
		return codes.Errorf(codes.Invalid, "size must be 1..%d bytes", MaxCiphertextBytes)
	}
	if len(m.Keys) == 0 || len(m.Keys) > MaxRecipients {
		return codes.Errorf(codes.Invalid, "a record carries 1..%d wrapped keys: the patient's and the author's", MaxRecipients)
	}
	if len(m.Network) != netkey.WrappedBytes {
		return codes.Errorf(codes.Invalid, "network must be the data key wrapped for the network key (%d bytes)", netkey.WrappedBytes)
	}
	return validKeys(m.Keys)
}

func validKeys(keys []WrappedKey) error {
	seen := make(map[tx.Address]bool, len(keys))
	for _, k := range keys {
		if err := k.Recipient.Validate(); err != nil {
			return err
		}
		if len(k.Wrapped) == 0 || len(k.Wrapped) > MaxWrappedKeyBytes {
			return codes.Errorf(codes.Invalid, "a wrapped key is 1..%d bytes", MaxWrappedKeyBytes)
		}
		if seen[k.Recipient] {
			return codes.Errorf(codes.Invalid, "two keys for recipient %s", k.Recipient)
		}
		seen[k.Recipient] = true
	}
	return nil
}

// Access asks to read a record, or all of a patient's records in a category, for a purpose.
type Access struct {
	Patient  tx.Address `json:"patient"`
	Record   string     `json:"record,omitempty"`
	Category string     `json:"category,omitempty"`
	Purpose  string     `json:"purpose"`
}

// Validate checks the message on its own.
func (m *Access) Validate() error {
	if err := m.Patient.Validate(); err != nil {
		return err
	}
	if (m.Record == "") == (m.Category == "") {
		return codes.Errorf(codes.Invalid, "name either a record or a category")
	}
	if m.Record != "" {
		if err := ValidID(m.Record); err != nil {
			return err
		}
	} else if err := validCategory(m.Category); err != nil {
		return err
	}
	return validPurpose(m.Purpose)
}

// Erase erases one record (every version) or, with All, all of the patient's records.
type Erase struct {
	Patient tx.Address `json:"patient,omitempty"`
	ID      string     `json:"id,omitempty"`
	All     bool       `json:"all,omitempty"`
}

// SettingsMsg sets a patient's record preferences.
type SettingsMsg struct {
	Patient tx.Address `json:"patient,omitempty"`
	Settings
}

// EmergencyOpen is a practitioner's break-glass request, with its reason (10..512 bytes of text)
// sealed for the patient's circle and the compliance scope: the ledger takes no reason in clear.
type EmergencyOpen struct {
	Patient      tx.Address  `json:"patient"`
	SealedReason *SealedText `json:"sealed_reason"`
	Hours        int         `json:"hours,omitempty"` // 1..72, default 24
}

// EmergencyReview marks an emergency session reviewed, with an optional note, sealed as the
// reason is (SealedNote).
type EmergencyReview struct {
	Patient    tx.Address  `json:"patient"`
	ID         uint64      `json:"id"`
	SealedNote *SealedText `json:"sealed_note,omitempty"`
	// Justified is the finding; omitted means justified. Not justified ends the session.
	Justified *bool `json:"justified,omitempty"`
}

// ValidID checks a record id: 1..64 characters of FHIR's id alphabet [A-Za-z0-9-.].
func ValidID(id string) error {
	if len(id) == 0 || len(id) > MaxIDBytes {
		return codes.Errorf(codes.Invalid, "record id must be 1..%d characters", MaxIDBytes)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return codes.Errorf(codes.Invalid, "record id may contain only A-Z, a-z, 0-9, '-' and '.'")
		}
	}
	return nil
}

func validResourceType(t string) error { return consent.CheckTag("resource_type", t) }

func validCategory(c string) error { return consent.CheckTag("category", c) }

func validPurpose(p string) error {
	if _, ok := consent.PurposeMask([]string{p}); !ok {
		return codes.Errorf(codes.Invalid, "unknown purpose of use %q; known: %v", p, consent.Purposes)
	}
	return nil
}
