package app_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/contracts/telemed"
)

// TestAttackTelemedConsultationWindow: a consultation booked for laboratory data lets its
// practitioner read and write that category only from 15 minutes before its start until its
// end plus the follow-up period (or its completion plus the follow-up), names itself on every
// access event, and gives nothing once cancelled; only the parties close it, and only the
// patient, guardians and the practitioner see it. The blocks replay to the same app hash.
func TestAttackTelemedConsultationWindow(t *testing.T) {
	w := newRecordsWorld(t)
	c := w.c
	now := func() time.Time { return genesisTime.Add(time.Duration(c.height+1)*time.Second + c.skew) }
	book := telemed.Book{Practitioner: w.docA.addr, Categories: []string{tag("laboratory")}, Start: now().Add(30 * time.Minute), Minutes: 30, FollowUpDays: 1}
	for name, bad := range map[string]telemed.Book{
		"an organization":       {Practitioner: w.lab.addr, Categories: book.Categories, Start: book.Start, Minutes: 30},
		"a category in clear":   {Practitioner: w.docA.addr, Categories: []string{"laboratory"}, Start: book.Start, Minutes: 30},
		"ten hours":             {Practitioner: w.docA.addr, Categories: book.Categories, Start: book.Start, Minutes: 600},
		"two months' follow-up": {Practitioner: w.docA.addr, Categories: book.Categories, Start: book.Start, Minutes: 30, FollowUpDays: 60},
		"two years ahead":       {Practitioner: w.docA.addr, Categories: book.Categories, Start: now().AddDate(2, 0, 0), Minutes: 30},
	} {
		if r := c.block(w.patient.sign(t, telemed.TypeBook, bad))[0]; r.Code == 0 {
			t.Errorf("%s: booked", name)
		}
	}
	res := c.block(w.patient.sign(t, telemed.TypeBook, book))[0]
	if res.Code != 0 {
		t.Fatalf("book: %s", res.Log)
	}
	id, _ := strconv.ParseUint(eventAttr(res, "telemed.booked", "id"), 10, 64)
	access := func(who *member, category string) records.AccessEvent {
		return w.access(t, who, records.Access{Patient: w.patient.addr, Category: category, Purpose: "TREAT"})
	}
	if ev := access(w.docA, "laboratory"); ev.Outcome != records.Denied {
		t.Fatalf("half an hour before the start: %+v", ev)
	}
	c.skew += 20 * time.Minute // ten minutes before the start
	ev := access(w.docA, "laboratory")
	if ev.Outcome != records.Granted || ev.Basis != "consultation" || ev.Consultation != id {
		t.Fatalf("ten minutes before the start: %+v", ev)
	}
	for name, ev := range map[string]records.AccessEvent{"another category": access(w.docA, "medications"), "another practitioner": access(w.docB, "laboratory")} {
		if ev.Outcome != records.Denied {
			t.Errorf("%s: %+v", name, ev)
		}
	}
	// The practitioner writes its note in the consultation's category.
	note, _ := w.seal(t, w.docA, "consult-note", 1, "laboratory", []byte(`{"resourceType":"Observation"}`), nil, nil)
	c.must(w.docA.sign(t, records.TypeAnchor, note))
	other, _ := w.seal(t, w.docA, "consult-rx", 1, "medications", []byte(`{"resourceType":"MedicationRequest"}`), nil, nil)
	c.expect(w.docA.sign(t, records.TypeAnchor, other), codes.Unauthorized)

	// Only the practitioner completes; then the follow-up day, then nothing.
	c.expect(w.patient.sign(t, telemed.TypeComplete, telemed.Complete{Patient: w.patient.addr, ID: id}), codes.NotFound)
	c.expect(w.docB.sign(t, telemed.TypeCancel, telemed.Cancel{Patient: w.patient.addr, ID: id}), codes.NotFound)
	c.skew += 20 * time.Minute
	c.must(w.docA.sign(t, telemed.TypeComplete, telemed.Complete{Patient: w.patient.addr, ID: id}))
	c.skew += 23 * time.Hour
	if ev := access(w.docA, "laboratory"); ev.Outcome != records.Granted || ev.Expires == nil || ev.Expires.After(now().Add(time.Hour)) {
		t.Fatalf("in the follow-up period: %+v", ev)
	}
	c.skew += 2 * time.Hour
	if ev := access(w.docA, "laboratory"); ev.Outcome != records.Denied {
		t.Fatalf("after the follow-up period: %+v", ev)
	}

	// A cancelled consultation opens nothing.
	book.Start = now().Add(10 * time.Minute)
	res = c.block(w.patient.sign(t, telemed.TypeBook, book))[0]
	second, _ := strconv.ParseUint(eventAttr(res, "telemed.booked", "id"), 10, 64)
	c.must(w.patient.sign(t, telemed.TypeCancel, telemed.Cancel{Patient: w.patient.addr, ID: second}))
	if ev := access(w.docA, "laboratory"); ev.Outcome != records.Denied {
		t.Fatalf("a cancelled consultation: %+v", ev)
	}

	// Who sees the consultations.
	count := func(reader *member) int {
		data, _ := json.Marshal(app.ResearchQuery{Patient: w.patient.addr, Reader: reader.addr})
		var cs []telemed.Consultation
		json.Unmarshal(query(t, c, app.PathConsultations, data), &cs)
		return len(cs)
	}
	if count(w.patient) != 2 || count(w.docA) != 2 || count(w.docB) != 0 {
		t.Fatalf("visible consultations: patient %d, practitioner %d, another %d", count(w.patient), count(w.docA), count(w.docB))
	}
}
