package agent_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/tx"
)

// TestAttackTagKeyRelease (issue 10): a patient's tag key, anchored wrapped for the network key,
// reaches the patient's agents and a grantee's through the network key's holders, and nobody
// else: a stranger and a revoked grantee find no key at all (as for a patient without one), a
// stranger's direct release request is refused, and every release, granted or refused, is in
// the patient's trail.
func TestAttackTagKeyRelease(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	p := w.keys["patient"].Address()
	key, err := w.agent("patient", "TREAT").EnsureTagKey(ctx, p)
	if err != nil || len(key) != records.TagKeyBytes {
		t.Fatalf("ensure: %x %v", key, err)
	}
	if again, err := w.agent("patient", "TREAT").EnsureTagKey(ctx, p); err != nil || !bytes.Equal(again, key) {
		t.Fatalf("a second agent of the patient got another key: %x %v", again, err)
	}
	grantee := w.account("tag-grantee", identity.RolePractitioner, "")
	stranger := w.account("tag-stranger", identity.RolePractitioner, "")
	w.send("patient", consent.TypeGrant, consent.GrantMsg{Grantee: grantee.Address(), Categories: []string{consent.CategoryTag(key, "allergies")},
		Purposes: []string{"TREAT"}, Expiry: w.later(24)})
	// Each agent reads the node itself: the world's light client caches verified values for
	// whoever asks in this process, and a stranger must be refused by the node, not by a cache.
	newAgent := func(name string) *agent.Agent {
		return agent.New(w.keys[name], agent.Config{Patients: map[string]tx.Address{"example": p}, Purpose: "TREAT"})
	}
	if got, err := newAgent("tag-grantee").TagKey(ctx, p); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("grantee: %x %v", got, err)
	}
	if _, err := newAgent("tag-stranger").TagKey(ctx, p); !errors.Is(err, agent.ErrNoTagKey) {
		t.Fatalf("stranger: %v", err)
	}
	if _, err := newAgent("tag-stranger").EnsureTagKey(ctx, p); err == nil {
		t.Fatal("a stranger anchored a tag key for the patient")
	}

	// A stranger asks a holder directly, with the anchored wrap in hand: refused like absence.
	body, _ := json.Marshal(api.ReleaseRequest{Kind: api.ReleaseTagKey, Patient: p})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+w.node.APIAddr+api.ReleasePath, bytes.NewReader(body))
	reqsig.Sign(req, stranger.ChainID, stranger.Address(), stranger.Key.Signing, body, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("stranger's release request: %d", resp.StatusCode)
	}
	// A tag key request dressed up with a record is no request at all.
	body, _ = json.Marshal(api.ReleaseRequest{Kind: api.ReleaseTagKey, Patient: p, Record: "x", Access: 1})
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, "http://"+w.node.APIAddr+api.ReleasePath, bytes.NewReader(body))
	reqsig.Sign(req, grantee.ChainID, grantee.Address(), grantee.Key.Signing, body, time.Now())
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("malformed tag key request: %d", resp.StatusCode)
	}

	// Revoked, the grantee's new agents find no key.
	grants, err := w.reads(p).Grants(ctx, p)
	if err != nil || len(grants) == 0 {
		t.Fatalf("grants: %v", err)
	}
	w.send("patient", consent.TypeRevoke, consent.RevokeMsg{ID: grants[len(grants)-1].ID})
	if _, err := newAgent("tag-grantee").TagKey(ctx, p); !errors.Is(err, agent.ErrNoTagKey) {
		t.Fatalf("revoked grantee: %v", err)
	}

	// The trail: the grantee's release granted, the stranger's refused.
	var grantedTo, refusedTo bool
	for deadline := time.Now().Add(time.Minute); !(grantedTo && refusedTo); time.Sleep(200 * time.Millisecond) {
		fetches, err := w.reads(p).Fetches(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fetches {
			if f.Kind != records.KindTagKey || f.Record != records.TagKeyRecord {
				continue
			}
			grantedTo = grantedTo || f.Requester == grantee.Address() && f.Outcome == records.Granted
			refusedTo = refusedTo || f.Requester == stranger.Address() && f.Outcome == records.Denied
		}
		if time.Now().After(deadline) {
			t.Fatalf("trail: granted to the grantee %t, refused to the stranger %t", grantedTo, refusedTo)
		}
	}
}

// TestCategoriesTravelAsTags (issue 10): through the agent, grants, their conditions, records and
// access requests name the patient's tags instead of categories, and decide exactly as before: a
// write grant of allergies lets its grantee add allergies and nothing else, a condition on
// "allergies" holds for allergy records only, and the patient's FHIR Consent shows names.
func TestCategoriesTravelAsTags(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	p := w.keys["patient"].Address()
	pa := w.agent("patient", "TREAT")
	doc := w.account("tags-doc", identity.RolePractitioner, "")
	cond := w.account("tags-cond", identity.RolePractitioner, "")
	if _, err := pa.Grant(ctx, consent.GrantMsg{Grantee: doc.Address(), Categories: []string{"allergies"}, Purposes: []string{"TREAT"},
		Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := pa.Grant(ctx, consent.GrantMsg{Grantee: cond.Address(), Categories: []string{consent.AllCategories}, Purposes: []string{"TREAT"},
		Expiry: w.later(24), Condition: `category == "allergies"`}); err != nil {
		t.Fatal(err)
	}
	grants, err := w.reads(p).Grants(ctx, p)
	if err != nil || len(grants) != 2 {
		t.Fatalf("grants: %+v %v", grants, err)
	}
	allergies := w.tag("allergies")
	if grants[0].Categories[0] != allergies || !strings.Contains(grants[1].Condition, allergies) || strings.Contains(grants[1].Condition, `"allergies"`) {
		t.Fatalf("the ledger names categories: %q, condition %q", grants[0].Categories, grants[1].Condition)
	}

	stored, err := w.agent("tags-doc", "TREAT").Add(ctx, example(t, "AllergyIntolerance-example.json"))
	if err != nil || stored.Anchor.Category != allergies {
		t.Fatalf("grantee's allergy record: %+v %v", stored, err)
	}
	if _, err := w.agent("tags-doc", "TREAT").Add(ctx, observation("example", "70")); !errors.Is(err, agent.ErrNoWriteGrant) {
		t.Fatalf("grantee wrote a vital sign under an allergies grant: %v", err)
	}
	vital, err := pa.Add(ctx, observation("example", "71"))
	if err != nil || vital.Anchor.Category != w.tag("vital-signs") {
		t.Fatalf("patient's own record: %+v %v", vital, err)
	}
	if _, err := w.agent("tags-cond", "TREAT").Read(ctx, stored.Anchor.ID); err != nil {
		t.Fatalf("the condition on allergies refused an allergy record: %v", err)
	}
	if _, err := w.agent("tags-cond", "TREAT").Read(ctx, vital.Anchor.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("the condition on allergies let a vital sign through: %v", err)
	}

	fc := w.facadeFor("patient", agent.Config{})
	status, _, body := fc.do("GET", "/fhir/Consent?patient=example", nil, true)
	if status != http.StatusOK || !strings.Contains(string(body), `"code":"allergies"`) || strings.Contains(string(body), allergies) {
		t.Fatalf("the patient's Consent shows %d %s", status, body)
	}
}
