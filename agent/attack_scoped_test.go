package agent_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/tx"
)

// Issue 10, authenticated queries: every patient-scoped read endpoint, asked with no signature
// and as a stranger, a grantee, a revoked grantee, a guardian, the patient and an auditor. The
// unsigned read is refused (401) whatever it names; a reader who may not see the answer gets,
// byte for byte, the answer for a patient (or record) that does not exist; the others see what
// their role allows, and an auditor's read lands in the patient's fetch trail.
func TestAttackScopedReads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	w := startWorld(t)
	ctx := w.ctx
	patient := w.keys["patient"]
	p := patient.Address()
	stored, err := w.agent("patient", "TREAT").Add(ctx, observation("example", "70")) // vital-signs
	if err != nil {
		t.Fatal(err)
	}
	id := stored.Anchor.ID
	grantee := w.account("grantee", identity.RolePractitioner, "")
	revoked := w.account("revoked", identity.RolePractitioner, "")
	other := w.account("other", identity.RolePractitioner, "") // granted another category only
	stranger := w.account("stranger", identity.RolePractitioner, "")
	guardian := w.patientAccount("guardian")
	auditor := w.account("auditor", identity.RolePractitioner, "", "audit")
	compliance := w.account("compliance", identity.RolePractitioner, "", "compliance")
	w.send("patient", identity.TypeSetGuardians, identity.SetGuardians{Guardians: []tx.Address{guardian.Address()}})
	for _, g := range []struct {
		to  *client.Signer
		cat string
	}{{grantee, "vital-signs"}, {revoked, "vital-signs"}, {other, "allergies"}} {
		w.send("patient", consent.TypeGrant, consent.GrantMsg{Grantee: g.to.Address(), Categories: []string{w.tag(g.cat)}, Purposes: []string{"TREAT"}, Expiry: w.later(24)})
	}
	grants, err := w.reads(p).Grants(ctx, p)
	if err != nil || len(grants) != 3 {
		t.Fatalf("grants: %d %v", len(grants), err)
	}
	w.send("patient", consent.TypeRevoke, consent.RevokeMsg{ID: grants[1].ID})
	ev, err := w.agent("grantee", "TREAT").Access(ctx, records.Access{Patient: p, Record: id, Purpose: "TREAT"})
	if err != nil || ev.Outcome != records.Granted {
		t.Fatalf("grantee access: %+v %v", ev, err)
	}
	er := w.account("er", identity.RolePractitioner, "", "emergency")
	if _, err := w.agent("er", "ETREAT").EmergencyOpen(ctx, p, "unconscious, allergy status unknown", 1); err != nil {
		t.Fatal(err)
	}
	ward := w.account("ward", identity.RoleOrganization, "hospital")
	w.send("patient", records.TypeSettings, records.SettingsMsg{Settings: records.Settings{EmergencyOrgs: []tx.Address{ward.Address()}}})
	if _, err := w.agent("grantee", "TREAT").Read(ctx, id); err != nil {
		t.Fatalf("grantee read: %v", err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if f, err := w.reads(p).Fetches(ctx, p); err == nil && len(f) > 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no fetch logged: %v", err)
		}
	}
	ghost := tx.Address(fmt.Sprintf("%040x", 7)) // no such account
	if ghost.Validate() != nil {
		t.Fatal("the absent patient's address must be well-formed")
	}

	sessions := map[*client.Signer]*reqsig.Sessions{}
	// get reads path signed by s (nil: unsigned), or in s's session with inSession.
	get := func(s *client.Signer, path string, inSession ...bool) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.node.APIAddr+path, nil)
		switch {
		case s != nil && len(inSession) > 0:
			if sessions[s] == nil {
				sessions[s] = reqsig.NewSessions(s.ChainID, s.Address(), s.Key.Signing, http.DefaultClient)
			}
			sessions[s].Sign(req, nil, time.Now())
			if req.Header.Get(reqsig.HeaderSession) == "" {
				t.Fatalf("%s opened no session", path)
			}
		case s != nil:
			reqsig.Sign(req, s.ChainID, s.Address(), s.Key.Signing, nil, time.Now())
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, bytes.TrimSpace(body)
	}
	pp := func(a tx.Address, rest string) string { return "/v1/patients/" + string(a) + "/" + rest }
	endpoints := []struct {
		name        string
		path, ghost string // the read, and the same read of an absent patient or record
		sees        map[string]bool
	}{
		{"record", "/v1/records/" + id, "/v1/records/" + id + "x", map[string]bool{"grantee": true}},
		{"history", "/v1/records/" + id + "/history", "/v1/records/" + id + "x/history", map[string]bool{"grantee": true}},
		{"records", pp(p, "records"), pp(ghost, "records"), map[string]bool{"grantee": true}},
		{"recipients", pp(p, "recipients?author="+string(p)+"&category=vital-signs"), pp(ghost, "recipients?author="+string(p)+"&category=vital-signs"), nil},
		{"access", pp(p, fmt.Sprintf("access/%d", ev.ID)), pp(ghost, fmt.Sprintf("access/%d", ev.ID)), map[string]bool{"grantee": true}},
		{"access-active", pp(p, fmt.Sprintf("access/%d/active?requester=%s&record=%s", ev.ID, grantee.Address(), id)),
			pp(ghost, fmt.Sprintf("access/%d/active?requester=%s&record=%s", ev.ID, grantee.Address(), id)), map[string]bool{"grantee": true}},
		{"audit", pp(p, "audit"), pp(ghost, "audit"), map[string]bool{"grantee": true, "er": true}}, // their own events
		{"emergency", pp(p, "emergency"), pp(ghost, "emergency"), map[string]bool{"er": true, "compliance": true}},
		{"feed", pp(p, "feed"), pp(ghost, "feed"), nil},
		{"settings", pp(p, "settings"), pp(ghost, "settings"), nil},
		{"fetches", pp(p, "fetches"), pp(ghost, "fetches"), nil},
		{"grants", pp(p, "grants"), pp(ghost, "grants"), map[string]bool{"grantee": true, "revoked": true, "other": true}},
		{"state", "/v1/state/" + string(consent.GrantKey(p, grants[0].ID)), "/v1/state/" + string(consent.GrantKey(ghost, grants[0].ID)), map[string]bool{"grantee": true}},
	}
	if len(endpoints) != len(api.ScopedReads)+1 {
		t.Fatalf("the table covers %d endpoints, the API has %d scoped reads and the state", len(endpoints), len(api.ScopedReads))
	}
	readers := []struct {
		name string
		s    *client.Signer
		full bool
	}{{"stranger", stranger, false}, {"grantee", grantee, false}, {"revoked", revoked, false}, {"other", other, false}, {"er", er, false},
		{"guardian", guardian, true}, {"patient", patient, true}, {"auditor", auditor, true}, {"compliance", compliance, false}}
	for _, e := range endpoints {
		if code, body := get(nil, e.path); code != http.StatusUnauthorized {
			t.Errorf("%s unsigned: %d %s", e.name, code, body)
		}
		for _, r := range readers {
			code, body := get(r.s, e.path)
			gcode, gbody := get(r.s, e.ghost)
			gbody = bytes.ReplaceAll(gbody, []byte(ghost), []byte(p))
			gbody = bytes.ReplaceAll(gbody, []byte(id+"x"), []byte(id))
			absent := code == gcode && bytes.Equal(body, gbody)
			if want := r.full || e.sees[r.name]; want == absent {
				t.Errorf("%s read by %s: sees=%t, got %d %s (absent: %d %s)", e.name, r.name, want, code, body, gcode, gbody)
			}
			// In a session the reader sees the same (the session names the same account).
			scode, sbody := get(r.s, e.path, true)
			sgcode, sgbody := get(r.s, e.ghost, true)
			sgbody = bytes.ReplaceAll(bytes.ReplaceAll(sgbody, []byte(ghost), []byte(p)), []byte(id+"x"), []byte(id))
			if sabsent := scode == sgcode && bytes.Equal(sbody, sgbody); sabsent != absent {
				t.Errorf("%s read by %s in a session: absent=%t, signed: absent=%t (%d %s)", e.name, r.name, sabsent, absent, scode, sbody)
			}
		}
	}
	// What a grantee sees of lists is its share only: its own access event, its own grant.
	trail, err := w.reads(grantee.Address()).Audit(ctx, p, client.AuditFilter{})
	if err != nil || len(trail) != 2 { // its access request and its read
		t.Fatalf("the grantee's trail: %+v %v", trail, err)
	}
	for _, e := range trail {
		if e.Requester != grantee.Address() {
			t.Fatalf("the grantee sees another's access event: %+v", e)
		}
	}
	if g, err := w.reads(grantee.Address()).Grants(ctx, p); err != nil || len(g) != 1 || g[0].Grantee != grantee.Address() {
		t.Fatalf("the grantee's grants: %+v %v", g, err)
	}
	// The auditor's reads are in the patient's trail, named by query.
	deadline := time.Now().Add(time.Minute)
	for {
		fetches, err := w.reads(p).Fetches(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		logged := map[string]bool{}
		for _, f := range fetches {
			if f.Kind == records.KindQuery && f.Requester == auditor.Address() {
				logged[f.Record] = true
			}
		}
		if len(logged) == len(endpoints) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the auditor's reads logged: %v", logged)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
