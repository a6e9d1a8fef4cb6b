package agent

import (
	"sync"
	"time"

	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

// Sessions. A granted access event lets its requester read until it expires (1 h, bounded by
// the grant or session it rests on): the agent keeps it and reads again within it without a new
// transaction, so a read costs a key release and a ciphertext fetch, not a block. Each of those
// is still logged by the node that answers and committed to the ledger, so the patient sees
// every read. Revocation, expiry, erasure or an ended break-glass session stop the holders'
// releases at the next block; a refused read drops the session and asks again on chain (where a
// denial is recorded).

// sessionMargin is how long before its expiry a session is no longer used: the holders decide
// on their own clocks.
const sessionMargin = 5 * time.Second

// maxSessions bounds the sessions one agent keeps.
const maxSessions = 4096

type sessionKey struct {
	patient  tx.Address
	record   string // a record id, or empty for a category
	category string
	purpose  string
}

type sessions struct {
	mu    sync.Mutex
	byKey map[sessionKey]*records.AccessEvent
}

func keyOf(ev *records.AccessEvent) sessionKey {
	k := sessionKey{patient: ev.Patient, record: ev.Record, purpose: ev.Purpose}
	if ev.Record == "" {
		k.category = ev.Category
	}
	return k
}

// keep remembers a granted event with an expiry.
func (s *sessions) keep(ev *records.AccessEvent, now time.Time) {
	if ev == nil || ev.Outcome != records.Granted || ev.Expires == nil || !now.Add(sessionMargin).Before(*ev.Expires) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey == nil {
		s.byKey = make(map[sessionKey]*records.AccessEvent)
	}
	if len(s.byKey) >= maxSessions {
		for k, e := range s.byKey {
			if !now.Add(sessionMargin).Before(*e.Expires) {
				delete(s.byKey, k)
			}
		}
		if len(s.byKey) >= maxSessions {
			clear(s.byKey)
		}
	}
	s.byKey[keyOf(ev)] = ev
}

// find returns a usable session covering rec for purpose: one for the record, else one for its
// category.
func (s *sessions) find(rec *records.Record, purpose string, now time.Time) *records.AccessEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range []sessionKey{
		{patient: rec.Patient, record: rec.ID, purpose: purpose},
		{patient: rec.Patient, category: rec.Category, purpose: purpose},
	} {
		ev := s.byKey[k]
		if ev == nil {
			continue
		}
		if now.Add(sessionMargin).Before(*ev.Expires) && ev.Covers(rec, now) {
			return ev
		}
		delete(s.byKey, k)
	}
	return nil
}

// category returns a usable category session of patient.
func (s *sessions) category(patient tx.Address, category, purpose string, now time.Time) *records.AccessEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := s.byKey[sessionKey{patient: patient, category: category, purpose: purpose}]
	if ev == nil || !now.Add(sessionMargin).Before(*ev.Expires) {
		return nil
	}
	return ev
}

// drop forgets a session the holders refused.
func (s *sessions) drop(ev *records.AccessEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey[keyOf(ev)] == ev {
		delete(s.byKey, keyOf(ev))
	}
}
