package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/tx"
)

// TestAttackGrantsTo: a grantee's "patients who granted me access" lists the patients whose
// grants to it are in force, and only to the grantee itself: another reader gets an empty list
// and cannot read the index's state keys; revoked and expired grants drop out, and the index
// entry goes with the last grant.
func TestAttackGrantsTo(t *testing.T) {
	reg, pat, pat2, doc, other := newKey("registrar"), newKey("patient"), newKey("patient2"), newKey("doctor"), newKey("other")
	c := newChain(t, reg)
	for _, k := range []*key{pat, pat2} {
		c.must(register(k, identity.RolePatient, "")(t))
	}
	c.must(register(doc, identity.RolePractitioner, "")(t))
	c.must(register(other, identity.RolePractitioner, "")(t))
	exp := genesisTime.Add(30 * 24 * time.Hour)
	at := genesisTime.Add(time.Hour)
	grant := func(p *key, to tx.Address, until time.Time) {
		c.must(p.sign(t, consent.TypeGrant, consent.GrantMsg{Grantee: to, Categories: []string{consent.AllCategories}, Purposes: []string{"TREAT"}, Expiry: until}))
	}
	grant(pat, doc.addr, exp)                          // 1
	grant(pat, doc.addr, genesisTime.Add(2*time.Hour)) // 2, expires soon
	grant(pat, other.addr, exp)                        // 3
	grant(pat2, doc.addr, exp)                         // 4

	list := func(grantee, reader tx.Address, at time.Time) map[tx.Address]int {
		t.Helper()
		data, _ := json.Marshal(app.ListQuery{Address: grantee, Reader: reader, At: at})
		var out []app.GrantsTo
		if err := json.Unmarshal(query(t, c, app.PathGrantsTo, data), &out); err != nil {
			t.Fatal(err)
		}
		m := map[tx.Address]int{}
		for _, e := range out {
			for _, g := range e.Grants {
				if g.Grantee != grantee || g.Patient != e.Patient {
					t.Fatalf("a grant of another grantee or patient in the list: %+v", g)
				}
			}
			m[e.Patient] = len(e.Grants)
		}
		return m
	}
	if m := list(doc.addr, doc.addr, at); len(m) != 2 || m[pat.addr] != 2 || m[pat2.addr] != 1 {
		t.Fatalf("the doctor's list: %v", m)
	}
	if m := list(doc.addr, doc.addr, genesisTime.Add(3*time.Hour)); m[pat.addr] != 1 {
		t.Fatalf("an expired grant is still listed: %v", m)
	}
	for _, reader := range []tx.Address{other.addr, pat.addr, ""} {
		if m := list(doc.addr, reader, at); len(m) != 0 {
			t.Fatalf("%q read the doctor's list: %v", reader, m)
		}
	}
	// The index's keys are not readable by key, not even by the grantee.
	for _, reader := range []*key{doc, other} {
		name := map[*key]string{doc: "the doctor", other: "another"}[reader]
		data, _ := json.Marshal(app.KeyQuery{Key: append(consent.GranteePrefix(doc.addr), pat.addr...), Reader: reader.addr, At: at})
		resp, err := c.app.Query(context.Background(), abciQuery(app.PathScopedKey, data))
		if err != nil || resp.Code != uint32(codes.NotFound) {
			t.Fatalf("the index key read by %s: %v code %d %s", name, err, resp.Code, resp.Value)
		}
	}
	raw := func() *consent.GrantedBy { return grantedBy(t, c, doc.addr, pat.addr) }
	if e := raw(); e == nil || e.Grants != 2 {
		t.Fatalf("the index entry: %+v", e)
	}
	c.must(pat.sign(t, consent.TypeRevoke, consent.RevokeMsg{ID: 1}))
	if m := list(doc.addr, doc.addr, at); m[pat.addr] != 1 {
		t.Fatalf("after revoking one of two: %v", m)
	}
	c.must(pat.sign(t, consent.TypeRevoke, consent.RevokeMsg{ID: 2}))
	if m := list(doc.addr, doc.addr, at); len(m) != 1 || m[pat2.addr] != 1 {
		t.Fatalf("after revoking both: %v", m)
	}
	if e := raw(); e != nil {
		t.Fatalf("the index entry outlived the grants: %+v", e)
	}
	if m := list(other.addr, other.addr, at); m[pat.addr] != 1 {
		t.Fatalf("the other grantee's list: %v", m)
	}
}

// grantedBy is a grantee's index entry for patient as the app stores it (the node's API never
// serves it), nil if there is none.
func grantedBy(t *testing.T, c *chain, grantee, patient tx.Address) *consent.GrantedBy {
	t.Helper()
	resp, err := c.app.Query(context.Background(), abciQuery(app.PathKey, append(consent.GranteePrefix(grantee), patient...)))
	if err != nil || len(resp.Value) == 0 {
		return nil
	}
	var e consent.GrantedBy
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		t.Fatal(err)
	}
	return &e
}
