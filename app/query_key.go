package app

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/care"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/contracts/programs"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/contracts/research"
	"github.com/medchain/medchain/contracts/telemed"
	"github.com/medchain/medchain/contracts/trials"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// PathScopedKey reads one state key of a patient's metadata (ScopedKey) for a reader, as PathKey
// does (with its proof when asked), if the reader may see it (query_scope.go); otherwise, and for
// an absent key, it answers NotFound alike. Its data is a KeyQuery.
const PathScopedKey = "/scoped_key"

// KeyQuery asks for a state key on behalf of a reader.
type KeyQuery struct {
	Key    []byte     `json:"key"`
	Reader tx.Address `json:"reader,omitempty"`
	At     time.Time  `json:"at,omitzero"`
}

// ScopedKey reports whether a state key holds a patient's metadata (the records and consent
// contracts' state, and the insurance contract's claims and enrollments), readable only through
// PathScopedKey.
func ScopedKey(key []byte) bool {
	k := string(key)
	return strings.HasPrefix(k, "rc/") || strings.HasPrefix(k, "cs/") || insurance.PatientKey(key) || trials.PrivateKey(key) || research.PrivateKey(key) || telemed.PrivateKey(key) || care.PrivateKey(key) || programs.PrivateKey(key)
}

func queryScopedKey(view *state.View, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	var q KeyQuery
	if err := json.Unmarshal(req.Data, &q); err != nil {
		return nil, codes.Errorf(codes.Malformed, "key query: %v", err)
	}
	sc, ok, err := keyScope(view, q.Key, q.Reader, q.At)
	if err != nil {
		return nil, err
	}
	if !ok {
		return &abci.ResponseQuery{Key: q.Key, Code: uint32(codes.NotFound), Log: "not found"}, nil
	}
	return audited(sc)(queryKey(view, q.Key, req.Prove))
}

// keyScope decides whether reader may read a scoped key, and with which scope. A key outside
// the layouts below, or whose value is absent, is refused.
func keyScope(view *state.View, key []byte, reader tx.Address, at time.Time) (*scope, bool, error) {
	parts := strings.Split(string(key), "/")
	if len(parts) < 3 {
		return nil, false, nil
	}
	patient := tx.Address(parts[2])
	switch kind := parts[0] + "/" + parts[1]; {
	case kind == "cs/grant" && len(parts) == 4:
		var g consent.Grant
		return itemScope(view, key, &g, patient, reader, at, func(sc *scope) (bool, error) { return sc.named(g.Grantee) })
	case (kind == "rc/v" && len(parts) == 4) || (kind == "rc/h" && len(parts) == 3):
		return recordKeyScope(view, parts[2], "", reader, at)
	case kind == "rc/p" && len(parts) == 4:
		return recordKeyScope(view, parts[3], patient, reader, at)
	case kind == "rc/b" && len(parts) == 3:
		hash, err := hex.DecodeString(parts[2])
		if err != nil {
			return nil, false, nil
		}
		rec, err := records.ByBlob(view, hash)
		if err != nil {
			return nil, false, ignoreNotFound(err)
		}
		return recordKeyScope(view, rec.ID, "", reader, at)
	case kind == "rc/a" && len(parts) == 4:
		var ev records.AccessEvent
		return itemScope(view, key, &ev, patient, reader, at, func(sc *scope) (bool, error) { return sc.named(ev.Requester) })
	case kind == "rc/e" && len(parts) == 4:
		var s records.EmergencySession
		return itemScope(view, key, &s, patient, reader, at, func(sc *scope) (bool, error) {
			return sc.full || s.Practitioner == reader, nil
		})
	case kind == "rc/tk" && len(parts) == 3:
		var k records.TagKey
		return itemScope(view, key, &k, patient, reader, at, func(sc *scope) (bool, error) { return sc.standing() })
	case (kind == "rc/n" || kind == "rc/f") && len(parts) == 4, kind == "rc/s" && len(parts) == 3:
		var v json.RawMessage
		return itemScope(view, key, &v, patient, reader, at, func(sc *scope) (bool, error) { return sc.full, nil })
	}
	return nil, false, nil
}

// itemScope loads the value at key into v and asks may whether the reader's scope of patient
// shows it.
func itemScope(view *state.View, key []byte, v any, patient, reader tx.Address, at time.Time, may func(*scope) (bool, error)) (*scope, bool, error) {
	if patient.Validate() != nil {
		return nil, false, nil
	}
	if ok, err := contracts.GetJSON(view, key, v); err != nil || !ok {
		return nil, false, err
	}
	sc, err := readScope(view, patient, reader, at)
	if err != nil {
		return nil, false, err
	}
	ok, err := may(sc)
	return sc, ok, err
}

// recordKeyScope decides a key of record id (of patient, if given) by the record rule.
func recordKeyScope(view *state.View, id string, patient, reader tx.Address, at time.Time) (*scope, bool, error) {
	if records.ValidID(id) != nil {
		return nil, false, nil
	}
	rec, sc, err := recordScope(view, id, reader, at)
	if err != nil {
		return nil, false, ignoreNotFound(err)
	}
	return sc, patient == "" || rec.Patient == patient, nil
}

func ignoreNotFound(err error) error {
	if codes.Of(err) == codes.NotFound {
		return nil
	}
	return err
}
