package app_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/records"
)

// TestAttackSealedReasons (issue 10): a break-glass reason or review note is sealed, never in
// clear (a reason is required, a note optional); a sealed one must be well formed (the ledger cannot open it); the patient's feed
// does not quote a sealed reason; its key is releasable to the patient, the practitioner who
// gave it and the compliance scope, and to nobody else.
func TestAttackSealedReasons(t *testing.T) {
	w := newRecordsWorld(t)
	c, pat := w.c, w.patient.addr
	sealed := func() *records.SealedText { return sealedText(pat) }
	open := func(m records.EmergencyOpen) []byte {
		m.Patient = pat
		return w.erDoc.sign(t, records.TypeEmergencyOpen, m)
	}
	bad := map[string]func(*records.SealedText){
		"short nonce":       func(s *records.SealedText) { s.Nonce = s.Nonce[:8] },
		"huge ciphertext":   func(s *records.SealedText) { s.Ciphertext = make([]byte, records.MaxSealedTextBytes+1) },
		"no keys":           func(s *records.SealedText) { s.Keys = nil },
		"key for nobody":    func(s *records.SealedText) { s.Keys[0].Recipient = "not-an-address" },
		"no network wrap":   func(s *records.SealedText) { s.Network = nil },
		"short commitment":  func(s *records.SealedText) { s.Commitment = s.Commitment[:16] },
		"oversized wrapped": func(s *records.SealedText) { s.Keys[0].Wrapped = make([]byte, 257) },
	}
	for name, spoil := range bad {
		s := sealed()
		spoil(s)
		t.Run(name, func(t *testing.T) { c.expect(open(records.EmergencyOpen{SealedReason: s}), codes.Invalid) })
	}
	c.expect(open(records.EmergencyOpen{}), codes.Invalid)
	sealedJSON, _ := json.Marshal(sealed())
	for _, msg := range []string{
		`{"patient":"` + string(pat) + `","reason":"found unconscious"}`,
		`{"patient":"` + string(pat) + `","reason":"found unconscious","sealed_reason":` + string(sealedJSON) + `}`,
	} {
		if code := c.block(w.erDoc.signRawMsg(t, records.TypeEmergencyOpen, msg))[0].Code; code == 0 {
			t.Fatalf("a reason in clear was taken: %s", msg)
		}
	}
	c.must(open(records.EmergencyOpen{SealedReason: sealed()}))

	var feed []records.Notification
	w.recordsQuery(t, app.PathFeed, app.RecordsQuery{Patient: pat}, &feed)
	if len(feed) != 1 || bytes.Contains([]byte(feed[0].Text), []byte{2}) || !bytes.Contains([]byte(feed[0].Text), []byte("sealed for you")) {
		t.Fatalf("feed: %+v", feed)
	}
	at := genesisTime.Add(time.Duration(w.c.height)*time.Second + w.c.skew)
	for _, tc := range []struct {
		who    *member
		active bool
	}{{w.patient, true}, {w.erDoc, true}, {w.complianc, true}, {w.docB, false}, {w.lab, false}} {
		var rel app.TextReleasable
		w.recordsQuery(t, app.PathTextReleasable, app.RecordsQuery{Requester: tc.who.addr, Patient: pat, Access: 1, ID: records.TextReason, At: at}, &rel)
		if rel.Active != tc.active || rel.Text == nil {
			t.Errorf("release of the reason to %s: active=%t, want %t", tc.who.addr, rel.Active, tc.active)
		}
	}
	// A compliance officer lists every emergency session of the patient, and its read is marked
	// to be logged like an auditor's; another practitioner sees none.
	for _, tc := range []struct {
		who  *member
		sees bool
	}{{w.complianc, true}, {w.docB, false}} {
		data, _ := json.Marshal(app.RecordsQuery{Reader: tc.who.addr, Patient: pat, At: at})
		resp, err := c.app.Query(t.Context(), abciQuery(app.PathEmergency, data))
		if err != nil || resp.Code != 0 {
			t.Fatalf("emergency list for %s: %v %+v", tc.who.addr, err, resp)
		}
		var list []records.EmergencySession
		json.Unmarshal(resp.Value, &list)
		_, audited := app.AuditedRead(resp)
		if (len(list) == 1) != tc.sees || audited != tc.sees {
			t.Errorf("emergency list for %s: %d sessions, audited %t, want %t", tc.who.addr, len(list), audited, tc.sees)
		}
	}
	// No review yet: there is no note to release.
	data, _ := json.Marshal(app.RecordsQuery{Requester: w.patient.addr, Patient: pat, Access: 1, ID: records.TextNote, At: at})
	if r, err := c.app.Query(t.Context(), abciQuery(app.PathTextReleasable, data)); err != nil || codes.Code(r.Code) != codes.NotFound {
		t.Fatalf("note release before any review: %+v %v", r, err)
	}
	if code := c.block(w.patient.signRawMsg(t, records.TypeEmergencyReview, `{"patient":"`+string(pat)+`","id":1,"note":"checked"}`))[0].Code; code == 0 {
		t.Fatal("a review note in clear was taken")
	}
	c.must(w.patient.sign(t, records.TypeEmergencyReview, records.EmergencyReview{Patient: pat, ID: 1, SealedNote: sealed()}))
	var rel app.TextReleasable
	w.recordsQuery(t, app.PathTextReleasable, app.RecordsQuery{Requester: w.erDoc.addr, Patient: pat, Access: 1, ID: records.TextNote, At: at}, &rel)
	if rel.Active || rel.Text == nil {
		t.Fatalf("the practitioner may read the review note: %+v", rel)
	}
}
