package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
)

// Issue 10: the app answers a patient-scoped query only with what its reader may see; a
// refusal is, to the byte, the answer for an absent record or patient, lists included (no
// cursor naming an item the reader was not shown), and an auditor's answer says it must be
// logged. (agent.TestAttackScopedReads walks the same rules through the signed HTTP API.)
func TestAttackScopedQueries(t *testing.T) {
	w := newRecordsWorld(t)
	c, pat := w.c, w.patient.addr
	auditor := newMember("auditor")
	c.block(auditor.register(t, identity.RolePractitioner, ""))
	c.block(w.reg.sign(t, identity.TypeAttest, identity.Attest{Subject: auditor.addr, Licence: "L-aud", Jurisdiction: "NL", Scopes: []string{app.ScopeAudit}, ExpiresAt: w.exp}))
	w.grant(t, w.lab, []string{"laboratory"}, "TREAT", true, w.exp)
	w.grant(t, w.docA, []string{"laboratory"}, "TREAT", false, w.exp)
	w.grant(t, w.docB, []string{"allergies"}, "TREAT", false, w.exp)
	for _, id := range []string{"rec-1", "rec-2", "rec-3"} {
		m, _ := w.seal(t, w.lab, id, 1, "laboratory", []byte(`{"resourceType":"Observation"}`), nil, nil)
		c.must(w.lab.sign(t, records.TypeAnchor, m))
	}
	at := genesisTime.Add(time.Hour)
	ask := func(path string, q any) *abci.ResponseQuery {
		data, _ := json.Marshal(q)
		resp, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: path, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	same := func(a, b *abci.ResponseQuery) bool {
		return a.Code == b.Code && a.Log == b.Log && string(a.Value) == string(b.Value) && a.Info == b.Info
	}
	ghost := newMember("ghost").addr // never registered
	for _, r := range []struct {
		name   string
		reader *member
		sees   bool
	}{{"patient", w.patient, true}, {"grantee", w.docA, true}, {"author", w.lab, true}, {"auditor", auditor, true},
		{"other category", w.docB, false}, {"stranger", w.hospital, false}, {"no reader", nil, false}} {
		q := app.RecordsQuery{ID: "rec-2", At: at}
		if r.reader != nil {
			q.Reader = r.reader.addr
		}
		absent := q
		absent.ID = "rec-9"
		got, none := ask(app.PathRecord, q), ask(app.PathRecord, absent)
		if r.sees != (got.Code == 0) {
			t.Errorf("%s reads the record: code %d %s", r.name, got.Code, got.Log)
		}
		if !r.sees && (got.Code != none.Code || got.Log != "record rec-2 not found" || none.Log != "record rec-9 not found") {
			t.Errorf("%s: refusal %d %q differs from absence %d %q", r.name, got.Code, got.Log, none.Code, none.Log)
		}
		if _, audited := app.AuditedRead(got); audited != (r.name == "auditor") {
			t.Errorf("%s: audited = %t", r.name, audited)
		}
		// One record per page: a reader who sees nothing gets the empty list of a patient with
		// no records, without a cursor.
		list := q
		list.Patient, list.ID, list.Page = pat, "", app.Page{Limit: 1}
		ghostList := list
		ghostList.Patient = ghost
		page, empty := ask(app.PathRecordList, list), ask(app.PathRecordList, ghostList)
		if r.sees && (page.Code != 0 || page.Info != "rec-1") {
			t.Errorf("%s's first page: %s next %q", r.name, page.Value, page.Info)
		}
		if !r.sees && !same(page, empty) {
			t.Errorf("%s's list %s (next %q) differs from an absent patient's %s", r.name, page.Value, page.Info, empty.Value)
		}
		grants := ask(app.PathConsentGrants, app.ListQuery{Address: pat, Reader: q.Reader, At: at})
		var gs []consent.Grant
		json.Unmarshal(grants.Value, &gs)
		switch want := map[string]int{"patient": 3, "auditor": 3, "grantee": 1, "author": 1, "other category": 1}[r.name]; {
		case len(gs) != want:
			t.Errorf("%s sees %d grants, want %d", r.name, len(gs), want)
		case want == 1 && gs[0].Grantee != r.reader.addr:
			t.Errorf("%s sees another's grant", r.name)
		}
	}
	// The state keys follow the same rule.
	key := func(reader *member, k []byte) uint32 {
		return ask(app.PathScopedKey, app.KeyQuery{Key: k, Reader: reader.addr, At: at}).Code
	}
	if key(w.docA, records.VersionKey("rec-2", 1)) != 0 || key(w.docB, records.VersionKey("rec-2", 1)) == 0 ||
		key(w.docB, records.VersionKey("rec-2", 1)) != key(w.docB, records.VersionKey("rec-9", 1)) {
		t.Error("a record's state key is not scoped like the record")
	}
	if key(w.docB, consent.GrantKey(pat, 1)) == 0 || key(w.patient, consent.GrantKey(pat, 1)) != 0 {
		t.Error("a grant's state key is not scoped like the grants")
	}
}
