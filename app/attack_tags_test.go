package app_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/tx"
)

// TestAttackTagKeyAndTags (issue 10): a patient's tag key is anchored once, by the patient or a
// guardian, with well-formed emergency tags; no grant by category nor record is taken before it;
// grants, records and access requests name categories and types by the patient's tags only, and
// match by tag (a grant of one tag covers nothing of another); break-glass opens exactly the
// tagged emergency categories; and the key is released only to the patient's circle.
func TestAttackTagKeyAndTags(t *testing.T) {
	w := newBareRecordsWorld(t)
	c, pat := w.c, w.patient.addr
	key := bytes.Repeat([]byte{7}, records.TagKeyBytes)
	tag := func(category string) string { return consent.CategoryTag(key, category) }
	var emergency []string
	for _, cat := range consent.EmergencyCategories {
		emergency = append(emergency, tag(cat))
	}
	wrap, err := netkey.Wrap(testNetKey, key, records.TagKeyContext(chainID, pat))
	if err != nil {
		t.Fatal(err)
	}
	set := func(signer *member, m records.SetTagKey) []byte { return signer.sign(t, records.TypeSetTagKey, m) }
	grant := func(categories ...string) []byte {
		return w.patient.sign(t, consent.TypeGrant, consent.GrantMsg{Grantee: w.docA.addr, Categories: categories, Purposes: []string{"TREAT"}, Expiry: w.exp, Write: true})
	}

	// Before the key: a grant by tag, and the patient's own record, are refused (nobody could
	// match or read their tags); a grant of every category is taken.
	c.expect(grant(tag("conditions")), codes.Invalid)
	m, _ := w.seal(t, w.patient, "early", 1, tag("conditions"), []byte(`{"resourceType":"Condition"}`), nil, nil)
	c.expect(w.patient.sign(t, records.TypeAnchor, m), codes.Invalid)
	c.must(grant(consent.AllCategories))

	c.expect(set(w.docA, records.SetTagKey{Patient: pat, Network: wrap, Emergency: emergency}), codes.Unauthorized)
	c.expect(set(w.patient, records.SetTagKey{Network: wrap, Emergency: emergency[:3]}), codes.Invalid)
	c.expect(set(w.patient, records.SetTagKey{Network: wrap, Emergency: append(emergency[:3:3], "allergies")}), codes.Invalid) // a name
	c.expect(set(w.patient, records.SetTagKey{Network: wrap, Emergency: append(emergency[:3:3], emergency[0])}), codes.Invalid)
	c.expect(set(w.patient, records.SetTagKey{Network: make([]byte, records.MaxTagKeyWrap+1), Emergency: emergency}), codes.Invalid)
	c.must(set(w.patient, records.SetTagKey{Network: wrap, Emergency: emergency}))
	c.expect(set(w.patient, records.SetTagKey{Network: wrap, Emergency: emergency}), codes.AlreadyExists) // it never changes

	// Names in clear are refused everywhere: grants (and their conditions), records' categories
	// and resource types, access requests.
	c.expect(grant("conditions"), codes.Invalid)
	c.expect(w.patient.sign(t, consent.TypeGrant, consent.GrantMsg{Grantee: w.docA.addr, Categories: []string{consent.AllCategories}, Purposes: []string{"TREAT"},
		Expiry: w.exp, Condition: `category == "laboratory"`}), codes.Invalid)
	w.patient.nonce-- // refused before the block (consent.Precheck): no nonce spent
	m, _ = w.seal(t, w.patient, "named", 1, tag("conditions"), []byte(`{"resourceType":"Condition"}`), nil, nil)
	m.ResourceType = "Condition"
	c.expect(w.patient.sign(t, records.TypeAnchor, m), codes.Invalid)
	c.expect(w.docA.sign(t, records.TypeAccess, records.Access{Patient: pat, Category: "conditions", Purpose: "TREAT"}), codes.Invalid)

	// A grant of one tag covers the records of that tag, and nothing of another.
	c.must(w.patient.sign(t, consent.TypeRevoke, consent.RevokeMsg{ID: 1}))
	w.grant(t, w.docA, []string{tag("conditions")}, "TREAT", true, w.exp)
	m, _ = w.seal(t, w.docA, "cond-t", 1, tag("conditions"), []byte(`{"resourceType":"Condition"}`), nil, nil)
	c.must(w.docA.sign(t, records.TypeAnchor, m))
	m, _ = w.seal(t, w.docA, "med-t", 1, tag("medications"), []byte(`{"resourceType":"MedicationStatement"}`), nil, nil)
	c.expect(w.docA.sign(t, records.TypeAnchor, m), codes.Unauthorized)
	m, _ = w.seal(t, w.docA, "cond-n", 1, tag("conditions"), []byte(`{"resourceType":"Condition"}`), nil, nil)
	m.Category = "conditions"
	c.expect(w.docA.sign(t, records.TypeAnchor, m), codes.Invalid) // the name is not taken
	if ev := w.access(t, w.docA, records.Access{Patient: pat, Record: "cond-t", Purpose: "TREAT"}); ev.Outcome != records.Granted {
		t.Fatalf("grantee's access to a record of its tag: %+v", ev)
	}
	if ev := w.access(t, w.docB, records.Access{Patient: pat, Record: "cond-t", Purpose: "TREAT"}); ev.Outcome != records.Denied {
		t.Fatalf("stranger's access: %+v", ev)
	}
	if ev := w.access(t, w.docA, records.Access{Patient: pat, Category: tag("laboratory"), Purpose: "TREAT"}); ev.Outcome != records.Denied {
		t.Fatalf("grantee's access to another tag: %+v", ev)
	}

	// Break-glass opens the tagged emergency categories and nothing else.
	c.must(w.patient.sign(t, records.TypeSettings, records.SettingsMsg{Settings: records.Settings{EmergencyOrgs: []tx.Address{w.hospital.addr}}}))
	c.must(w.hospital.sign(t, identity.TypeAffiliate, identity.Affiliate{Practitioner: w.erDoc.addr, Until: w.exp}))
	for id, cat := range map[string]string{"allergy-t": "allergies", "lab-t": "laboratory"} {
		m, _ := w.seal(t, w.patient, id, 1, tag(cat), []byte(`{"resourceType":"Observation"}`), nil, nil)
		c.must(w.patient.sign(t, records.TypeAnchor, m))
	}
	c.must(w.erDoc.sign(t, records.TypeEmergencyOpen, records.EmergencyOpen{Patient: pat, SealedReason: sealedText(pat)}))
	// Its audit event names the patient's emergency tags, no category in clear.
	var trail []records.AccessEvent
	w.recordsQuery(t, app.PathAudit, app.RecordsQuery{Patient: pat}, &trail)
	wantOpened := slices.Clone(emergency)
	slices.Sort(wantOpened)
	if i := slices.IndexFunc(trail, func(e records.AccessEvent) bool { return e.Basis == "emergency" }); i < 0 ||
		trail[i].Category != strings.Join(wantOpened, ",") {
		t.Fatalf("the break-glass event: %+v", trail)
	}
	if ev := w.access(t, w.erDoc, records.Access{Patient: pat, Record: "allergy-t", Purpose: "ETREAT"}); ev.Outcome != records.Granted {
		t.Fatalf("break-glass read of a tagged emergency category: %+v", ev)
	}
	if ev := w.access(t, w.erDoc, records.Access{Patient: pat, Record: "lab-t", Purpose: "ETREAT"}); ev.Outcome != records.Denied {
		t.Fatalf("break-glass read of a tagged non-emergency category: %+v", ev)
	}

	// The key goes to the patient's circle only: the patient, a grantee and the break-glass
	// practitioner; a stranger and an organization with no grant get nothing.
	at := genesisTime.Add(time.Duration(w.c.height)*time.Second + w.c.skew)
	for _, tc := range []struct {
		who    *member
		active bool
	}{{w.patient, true}, {w.docA, true}, {w.erDoc, true}, {w.docB, false}, {w.lab, false}} {
		var rel app.TagKeyReleasable
		w.recordsQuery(t, app.PathTagKeyReleasable, app.RecordsQuery{Requester: tc.who.addr, Patient: pat, At: at}, &rel)
		if rel.Active != tc.active || rel.TagKey == nil || !bytes.Equal(rel.TagKey.Network, wrap) {
			t.Errorf("tag key release to %s: active=%t, want %t", tc.who.addr, rel.Active, tc.active)
		}
	}
}
