package app_test

import (
	"testing"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// Attack review, findings 1-4: the state machine's integrity and authorization rules.

// A party with a write grant for one category cannot publish a new version of another
// category's record, neither moving it into its own category nor keeping its category.
func TestAttackCrossCategorySupersede(t *testing.T) {
	w := newRecordsWorld(t)
	c := w.c
	w.grant(t, w.docA, []string{"conditions"}, "TREAT", true, w.exp)
	w.grant(t, w.docB, []string{"medications"}, "TREAT", true, w.exp)
	m, _ := w.seal(t, w.docA, "cond-1", 1, "conditions", []byte(`{"resourceType":"Condition"}`), nil, nil)
	c.must(w.docA.sign(t, records.TypeAnchor, m))

	// B re-files A's Condition under medications, where B may write.
	m, _ = w.seal(t, w.docB, "cond-1", 2, "medications", []byte(`{"resourceType":"Condition","note":"forged"}`), nil, nil)
	c.expect(w.docB.sign(t, records.TypeAnchor, m), codes.Invalid)
	// B keeps the category, but holds no write grant for conditions.
	m, _ = w.seal(t, w.docB, "cond-1", 2, "conditions", []byte(`{"resourceType":"Condition","note":"forged"}`), nil, nil)
	c.expect(w.docB.sign(t, records.TypeAnchor, m), codes.Unauthorized)

	var rec records.Record
	w.recordsQuery(t, app.PathRecord, app.RecordsQuery{ID: "cond-1"}, &rec)
	if rec.Version != 1 || rec.Author != w.docA.addr || rec.Category != tag("conditions") {
		t.Fatalf("record changed: %+v", rec)
	}
	// The author, who may write conditions, can still publish version 2.
	m, _ = w.seal(t, w.docA, "cond-1", 2, "conditions", []byte(`{"resourceType":"Condition","note":"v2"}`), nil, nil)
	c.must(w.docA.sign(t, records.TypeAnchor, m))
}

// Each way of ending a break-glass session ends it from the next block: a granted event taken
// during the session no longer fetches, and a new request is denied.
func TestAttackBreakGlassSessionsEnd(t *testing.T) {
	cases := map[string]func(w *recordsWorld){
		"review not justified": func(w *recordsWorld) {
			no := false
			w.c.must(w.patient.sign(t, records.TypeEmergencyReview, records.EmergencyReview{Patient: w.patient.addr, ID: 1, SealedNote: sealedText(w.patient.addr), Justified: &no}))
		},
		"patient opts out": func(w *recordsWorld) {
			w.c.must(w.patient.sign(t, records.TypeSettings, records.SettingsMsg{Settings: records.Settings{EmergencyOptOut: true, EmergencyOrgs: []tx.Address{w.hospital.addr}}}))
		},
		"attestation revoked": func(w *recordsWorld) {
			atts := attestations(t, w.c, w.erDoc.addr)
			w.c.must(w.reg.sign(t, identity.TypeRevokeAttestation, identity.RevokeAttestation{Subject: w.erDoc.addr, ID: atts[0].ID}))
		},
		"practitioner unaffiliated": func(w *recordsWorld) {
			w.c.must(w.hospital.sign(t, identity.TypeUnaffiliate, identity.Unaffiliate{Practitioner: w.erDoc.addr}))
		},
	}
	for name, end := range cases {
		t.Run(name, func(t *testing.T) {
			w := newRecordsWorld(t)
			c, pat := w.c, w.patient.addr
			c.must(w.patient.sign(t, records.TypeSettings, records.SettingsMsg{Settings: records.Settings{EmergencyOrgs: []tx.Address{w.hospital.addr}}}))
			c.must(w.hospital.sign(t, identity.TypeAffiliate, identity.Affiliate{Practitioner: w.erDoc.addr, Until: w.exp}))
			m, sealed := w.seal(t, w.patient, "allergy-1", 1, "allergies", []byte(`{"resourceType":"AllergyIntolerance"}`), nil, nil)
			c.must(w.patient.sign(t, records.TypeAnchor, m))
			c.must(w.erDoc.sign(t, records.TypeEmergencyOpen, records.EmergencyOpen{Patient: pat, SealedReason: sealedText(pat)}))
			req := records.Access{Patient: pat, Record: "allergy-1", Purpose: "ETREAT"}
			ev := w.access(t, w.erDoc, req)
			if ev.Outcome != records.Granted || !w.fetchable(t, w.erDoc, ev, sealed.Hash[:]) {
				t.Fatalf("break-glass read refused before the session ended: %+v", ev)
			}
			end(w)
			if w.fetchable(t, w.erDoc, ev, sealed.Hash[:]) {
				t.Fatal("an access event of the ended session still fetches")
			}
			if ev := w.access(t, w.erDoc, req); ev.Outcome != records.Denied {
				t.Fatalf("ended session still grants: %+v", ev)
			}
		})
	}
}

// A guardian's "granted (guardian)" access gets the key released, and a removed guardian's old
// access event no longer fetches nor releases.
func TestAttackGuardianReadsAgree(t *testing.T) {
	w := newRecordsWorld(t)
	c, pat := w.c, w.patient.addr
	guardian := newMember("guardian")
	c.must(guardian.register(t, identity.RolePatient, ""))
	c.must(w.patient.sign(t, identity.TypeSetGuardians, identity.SetGuardians{Guardians: []tx.Address{guardian.addr}}))
	plain := []byte(`{"resourceType":"Observation"}`)
	m, sealed := w.seal(t, w.patient, "obs-1", 1, "vital-signs", plain, nil, nil)
	c.must(w.patient.sign(t, records.TypeAnchor, m))
	// A record sealed with a key for the guardian is refused: guardians get keys by release.
	m2, _ := w.seal(t, w.patient, "obs-2", 1, "vital-signs", plain, nil, guardian)
	c.expect(w.patient.sign(t, records.TypeAnchor, m2), codes.Invalid)

	ev := w.access(t, guardian, records.Access{Patient: pat, Record: "obs-1", Purpose: "TREAT"})
	if ev.Outcome != records.Granted || ev.Basis != "guardian" || !w.fetchable(t, guardian, ev, sealed.Hash[:]) {
		t.Fatalf("guardian access = %+v", ev)
	}
	var rec records.Record
	w.recordsQuery(t, app.PathRecord, app.RecordsQuery{ID: "obs-1"}, &rec)
	dk, ok := w.released(t, guardian, ev, "obs-1")
	if !ok {
		t.Fatal("the guardian's access releases no key")
	}
	var commit [32]byte
	copy(commit[:], rec.Commitment)
	if got, err := seal.Open(sealed.Ciphertext, records.SealContext(chainID, "obs-1", 1), dk, commit); err != nil || string(got) != string(plain) {
		t.Fatalf("guardian cannot decrypt: %v", err)
	}

	c.must(w.patient.sign(t, identity.TypeSetGuardians, identity.SetGuardians{Guardians: []tx.Address{}}))
	if w.fetchable(t, guardian, ev, sealed.Hash[:]) {
		t.Fatal("a removed guardian's access event still fetches")
	}
	if _, ok := w.released(t, guardian, ev, "obs-1"); ok {
		t.Fatal("a removed guardian still gets the key released")
	}
	if ev := w.access(t, guardian, records.Access{Patient: pat, Record: "obs-1", Purpose: "TREAT"}); ev.Outcome != records.Denied {
		t.Fatalf("removed guardian granted: %+v", ev)
	}
}

// An access event resting on an organization's grant stops covering the record as soon as the
// grant is revoked or the practitioner leaves the organization: AccessActive (used by blob
// serving and the organization re-wrap service) decides again at serving time.
func TestAttackAccessRecheckedAtServing(t *testing.T) {
	w := newRecordsWorld(t)
	c, pat := w.c, w.patient.addr
	m, _ := w.seal(t, w.patient, "imm-1", 1, "immunizations", []byte(`{"resourceType":"Immunization"}`), nil, nil)
	c.must(w.patient.sign(t, records.TypeAnchor, m))
	grant := w.grant(t, w.hospital, []string{"immunizations"}, "TREAT", false, w.exp)
	c.must(w.hospital.sign(t, identity.TypeAffiliate, identity.Affiliate{Practitioner: w.docB.addr, Until: w.exp}))
	ev := w.access(t, w.docB, records.Access{Patient: pat, Record: "imm-1", Purpose: "TREAT"})
	active := func() bool {
		var ok bool
		w.recordsQuery(t, app.PathAccessActive, app.RecordsQuery{Requester: w.docB.addr, Patient: pat, Access: ev.ID, ID: "imm-1",
			At: genesisTime.Add(time.Duration(w.c.height)*time.Second + w.c.skew)}, &ok)
		return ok
	}
	if ev.Outcome != records.Granted || !active() {
		t.Fatalf("affiliated practitioner's access = %+v", ev)
	}
	c.must(w.patient.sign(t, "consent/revoke", map[string]any{"id": grant}))
	if active() {
		t.Fatal("access still active after the grant was revoked")
	}
}
