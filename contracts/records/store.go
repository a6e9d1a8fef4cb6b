package records

import (
	"encoding/hex"
	"strconv"

	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// State keys, all under "rc/":
//
//	rc/v/<id>/<version>       Record (every version)
//	rc/h/<id>                 head: BlobRef of the latest version
//	rc/p/<patient>/<id>       index of a patient's records (value: "1")
//	rc/b/<ciphertext hash>    BlobRef
//	rc/a/<patient>/<seq>      AccessEvent
//	rc/e/<patient>/<seq>      EmergencySession
//	rc/n/<patient>/<seq>      Notification
//	rc/s/<patient>            Settings
//	rc/tk/<patient>           TagKey
const root = "rc/"

var (
	seqAccess    = []byte(root + "seq/a")
	seqEmergency = []byte(root + "seq/e")
	seqNotice    = []byte(root + "seq/n")
)

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// VersionKey is the state key of one version of a record's anchor.
func VersionKey(id string, v uint32) []byte {
	return []byte(root + "v/" + id + "/" + contracts.SeqKey(uint64(v)))
}
func versionPrefix(id string) []byte              { return []byte(root + "v/" + id + "/") }
func headKey(id string) []byte                    { return []byte(root + "h/" + id) }
func patientPrefix(p tx.Address) []byte           { return []byte(root + "p/" + string(p) + "/") }
func patientKey(p tx.Address, id string) []byte   { return append(patientPrefix(p), id...) }
func blobKey(hash []byte) []byte                  { return []byte(root + "b/" + hex.EncodeToString(hash)) }
func accessPrefix(p tx.Address) []byte            { return []byte(root + "a/" + string(p) + "/") }
func emergencyPrefix(p tx.Address) []byte         { return []byte(root + "e/" + string(p) + "/") }
func noticePrefix(p tx.Address) []byte            { return []byte(root + "n/" + string(p) + "/") }
func settingsKey(p tx.Address) []byte             { return []byte(root + "s/" + string(p)) }
func seqKey(prefix []byte, n uint64) []byte       { return append(prefix, contracts.SeqKey(n)...) }
func accessKey(p tx.Address, id uint64) []byte    { return seqKey(accessPrefix(p), id) }
func emergencyKey(p tx.Address, id uint64) []byte { return seqKey(emergencyPrefix(p), id) }

// Get returns the latest version of record id, or NotFound.
func Get(r state.Reader, id string) (*Record, error) {
	head, err := contracts.Load[BlobRef](r, headKey(id), "record %s not found", id)
	if err != nil {
		return nil, err
	}
	return GetVersion(r, id, head.Version)
}

// GetVersion returns one version of a record, or NotFound.
func GetVersion(r state.Reader, id string, v uint32) (*Record, error) {
	return contracts.Load[Record](r, VersionKey(id, v), "record %s version %d not found", id, v)
}

// History returns every version of a record, oldest first.
func History(r state.Reader, id string) ([]Record, error) { return list[Record](r, versionPrefix(id)) }

// ByBlob returns the record version whose ciphertext has the given SHA-256, or NotFound.
func ByBlob(r state.Reader, hash []byte) (*Record, error) {
	ref, err := contracts.Load[BlobRef](r, blobKey(hash), "no record has this ciphertext")
	if err != nil {
		return nil, err
	}
	return GetVersion(r, ref.ID, ref.Version)
}

// List returns the latest version of each of a patient's records, by id.
func List(r state.Reader, patient tx.Address) ([]Record, error) {
	var ids []string
	prefix := patientPrefix(patient)
	err := r.Iterate(prefix, func(k, _ []byte) bool {
		ids = append(ids, string(k[len(prefix):]))
		return false
	})
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(ids))
	for _, id := range ids {
		rec, err := Get(r, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *rec)
	}
	return out, nil
}

// GetAccess returns one of a patient's access events, or NotFound.
func GetAccess(r state.Reader, patient tx.Address, id uint64) (*AccessEvent, error) {
	return contracts.Load[AccessEvent](r, accessKey(patient, id), "access event %d not found", id)
}

// AccessEvents lists a patient's access events, oldest first.
func AccessEvents(r state.Reader, patient tx.Address) ([]AccessEvent, error) {
	return list[AccessEvent](r, accessPrefix(patient))
}

// EmergencySessions lists a patient's emergency sessions, oldest first.
func EmergencySessions(r state.Reader, patient tx.Address) ([]EmergencySession, error) {
	return list[EmergencySession](r, emergencyPrefix(patient))
}

// GetEmergencySession returns one of a patient's emergency sessions, or NotFound.
func GetEmergencySession(r state.Reader, patient tx.Address, id uint64) (*EmergencySession, error) {
	return contracts.Load[EmergencySession](r, emergencyKey(patient, id), "emergency session %d not found", id)
}

// Notifications lists a patient's feed, oldest first.
func Notifications(r state.Reader, patient tx.Address) ([]Notification, error) {
	return list[Notification](r, noticePrefix(patient))
}

// GetSettings returns a patient's settings (zero if never set).
func GetSettings(r state.Reader, patient tx.Address) (*Settings, error) {
	var s Settings
	_, err := contracts.GetJSON(r, settingsKey(patient), &s)
	return &s, err
}

func list[T any](r state.Reader, prefix []byte) ([]T, error) { return contracts.List[T](r, prefix) }

// EachBlob calls fn with the ciphertext name of every anchored record version, erased ones
// included (their anchors say so), in name order, until fn returns false.
func EachBlob(r state.Reader, fn func(hash []byte) bool) error {
	prefix := []byte(root + "b/")
	var stop bool
	return r.Iterate(prefix, func(k, _ []byte) bool {
		h, err := hex.DecodeString(string(k[len(prefix):]))
		if err == nil && len(h) == 32 {
			stop = !fn(h)
		}
		return stop
	})
}
