package app_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/tx"
)

func check(t *testing.T, c *chain, patient, requester tx.Address, category, purpose string, at time.Time) consent.Decision {
	t.Helper()
	data, _ := json.Marshal(app.ConsentCheck{Patient: patient, Request: consent.Request{Requester: requester, Category: tag(category), Purpose: purpose, At: at}})
	var d consent.Decision
	if err := json.Unmarshal(query(t, c, app.PathConsentCheck, data), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConsentGrantCheckRevoke(t *testing.T) {
	reg, pat, doc, other := newKey("registrar"), newKey("patient"), newKey("doctor"), newKey("other")
	c := newChain(t, reg)
	c.must(register(pat, identity.RolePatient, "")(t))
	c.must(register(doc, identity.RolePractitioner, "")(t))
	c.must(register(other, identity.RolePractitioner, "")(t))
	c.must(setTagKey(t, pat, testTagKey))
	exp := genesisTime.Add(30 * 24 * time.Hour)
	at := genesisTime.Add(time.Hour)

	c.expect(doc.sign(t, consent.TypeGrant, consent.GrantMsg{Grantee: other.addr, Categories: []string{tag("laboratory")}, Purposes: []string{"TREAT"}, Expiry: exp}), codes.Unauthorized)
	c.expect(pat.sign(t, consent.TypeGrant, consent.GrantMsg{Grantee: doc.addr, Categories: []string{"astrology"}, Purposes: []string{"TREAT"}, Expiry: exp}), codes.Invalid)
	c.expect(pat.sign(t, consent.TypeGrant, consent.GrantMsg{Grantee: doc.addr, Categories: []string{tag("laboratory")}, Purposes: []string{"SELL"}, Expiry: exp}), codes.Invalid)
	c.expect(pat.sign(t, consent.TypeGrant, consent.GrantMsg{Grantee: doc.addr, Categories: []string{tag("laboratory")}, Purposes: []string{"TREAT"}, Expiry: genesisTime}), codes.Invalid)
	c.must(pat.sign(t, consent.TypeGrant, consent.GrantMsg{Grantee: doc.addr, Categories: []string{tag("laboratory")}, Purposes: []string{"TREAT"}, Expiry: exp}))

	if d := check(t, c, pat.addr, doc.addr, "laboratory", "TREAT", at); !d.Allowed || d.Grant != 1 {
		t.Fatalf("granted access denied: %+v", d)
	}
	for name, d := range map[string]consent.Decision{
		"other reader":   check(t, c, pat.addr, other.addr, "laboratory", "TREAT", at),
		"other category": check(t, c, pat.addr, doc.addr, "medications", "TREAT", at),
		"wrong purpose":  check(t, c, pat.addr, doc.addr, "laboratory", "HRESCH", at),
		"after expiry":   check(t, c, pat.addr, doc.addr, "laboratory", "TREAT", exp),
	} {
		if d.Allowed {
			t.Errorf("%s: allowed", name)
		}
	}
	// Revocation applies to everything after the block that holds it.
	c.expect(other.sign(t, consent.TypeRevoke, consent.RevokeMsg{Patient: pat.addr, ID: 1}), codes.Unauthorized)
	c.must(pat.sign(t, consent.TypeRevoke, consent.RevokeMsg{ID: 1}))
	if d := check(t, c, pat.addr, doc.addr, "laboratory", "TREAT", at); d.Allowed {
		t.Fatal("revoked grant still allows access")
	}
	c.expect(pat.sign(t, consent.TypeRevoke, consent.RevokeMsg{ID: 1}), codes.Invalid)
	c.expect(pat.sign(t, consent.TypeRevoke, consent.RevokeMsg{ID: 99}), codes.NotFound)
}

func TestGuardianManagesConsent(t *testing.T) {
	reg, child, mum, doc := newKey("registrar"), newKey("child"), newKey("mum"), newKey("doctor")
	c := newChain(t, reg)
	c.must(register(child, identity.RolePatient, "")(t))
	c.must(register(mum, identity.RolePatient, "")(t))
	c.must(register(doc, identity.RolePractitioner, "")(t))
	msg := consent.GrantMsg{Patient: child.addr, Grantee: doc.addr, Categories: []string{consent.AllCategories}, Purposes: []string{"TREAT"}, Expiry: genesisTime.AddDate(1, 0, 0)}
	c.expect(mum.sign(t, consent.TypeGrant, msg), codes.Unauthorized) // not (yet) a guardian
	c.must(child.sign(t, identity.TypeSetGuardians, identity.SetGuardians{Guardians: []tx.Address{mum.addr}}))
	c.must(mum.sign(t, consent.TypeGrant, msg))
	if d := check(t, c, child.addr, doc.addr, "immunizations", "TREAT", genesisTime.Add(time.Hour)); !d.Allowed {
		t.Fatal("a guardian's grant does not allow access")
	}
	var grants []consent.Grant
	if err := json.Unmarshal(query(t, c, app.PathConsentGrants, listFor(child.addr, mum.addr)), &grants); err != nil || len(grants) != 1 || grants[0].Patient != child.addr {
		t.Fatalf("grants = %+v %v", grants, err)
	}
}

func TestConsentConditions(t *testing.T) {
	reg, pat, doc := newKey("registrar"), newKey("patient"), newKey("doctor")
	c := newChain(t, reg)
	c.must(register(pat, identity.RolePatient, "")(t))
	c.must(register(doc, identity.RolePractitioner, "")(t))
	exp := genesisTime.AddDate(1, 0, 0)
	grant := func(cond string) []byte {
		return pat.sign(t, consent.TypeGrant, consent.GrantMsg{Grantee: doc.addr, Categories: []string{consent.AllCategories},
			Purposes: []string{"TREAT", "HRESCH"}, Expiry: exp, Condition: cond})
	}
	// Does not parse, not boolean, undeclared, over the size limit. Refused by validate
	// (consent.Precheck), so no nonce is consumed: hence pat.nonce--.
	for _, cond := range []string{`purpose ==`, `purpose`, `unknown_var == "x"`, strings.Repeat(`true && `, 200) + `true`} {
		c.expect(grant(cond), codes.Invalid)
		pat.nonce--
	}
	// Office hours on weekdays, and never for laboratory data.
	c.must(grant(`time.getHours() >= 8 && time.getHours() < 18 && time.getDayOfWeek() != 0 && category != "` + tag("laboratory") + `"`))
	monday9 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for at, want := range map[time.Time]bool{monday9: true, monday9.Add(10 * time.Hour): false, monday9.AddDate(0, 0, 6): false} {
		if d := check(t, c, pat.addr, doc.addr, "immunizations", "TREAT", at); d.Allowed != want {
			t.Errorf("at %v: allowed = %v, want %v", at, d.Allowed, want)
		}
	}
	if d := check(t, c, pat.addr, doc.addr, "laboratory", "TREAT", monday9); d.Allowed {
		t.Error("condition excluding laboratory ignored")
	}
	// A condition whose estimated cost exceeds the limit is refused when granted (the runtime limit
	// stays as a backstop: contracts/consent tests).
	c.must(pat.sign(t, consent.TypeRevoke, consent.RevokeMsg{ID: 1}))
	c.expect(grant(`[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, a+b+c+d > 0))))`), codes.Invalid)
	pat.nonce--
	c.must(grant(`[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, a+b > 0))`)) // the same shape, within the limit
	if d := check(t, c, pat.addr, doc.addr, "immunizations", "TREAT", monday9); !d.Allowed {
		t.Error("a cheap comprehension was denied")
	}
}

// listFor is the query of patient's list, first page, read by reader.
func listFor(patient, reader tx.Address) []byte {
	q, _ := json.Marshal(app.ListQuery{Address: patient, Reader: reader})
	return q
}
