package portal_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/programs"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// TestPortalCare: in a real browser, the patient's care page shows its telemedicine
// consultation with the doctor, the task the doctor asked the hospital to do, and, looked up by
// its identifier, the insurer's program it is enrolled in with its points; the patient cancels
// the consultation before it starts; an unknown program is said to be unknown; a clinician has
// no care page.
func TestPortalCare(t *testing.T) {
	w := startPortal(t)
	doctor := w.address("doctor")
	if _, _, err := w.pa.BookConsultation(w.ctx, w.patient, agent.Booking{Practitioner: doctor, Categories: []string{"laboratory"},
		Start: time.Now().Add(2 * time.Hour), Minutes: 30, FollowUpDays: 3}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.pa.Grant(w.ctx, consent.GrantMsg{Grantee: doctor, Categories: []string{"care-plans"}, Purposes: []string{"TREAT"},
		Expiry: time.Now().Add(24 * time.Hour), Write: true}); err != nil {
		t.Fatal(err)
	}
	dk, err := w.kr.Get("doctor", "")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := client.NewSigner(w.ctx, w.c, dk)
	if err != nil {
		t.Fatal(err)
	}
	task, err := fhir.Parse([]byte(`{"resourceType":"Task","status":"requested","intent":"order","for":{"reference":"Patient/example"},` +
		`"description":"Blood pressure check","owner":{"identifier":{"system":"urn:medchain:account","value":"` + string(w.address("hospital")) + `"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.New(ds, agent.Config{Patients: map[string]tx.Address{"example": w.patient}}).AddTask(w.ctx, task); err != nil {
		t.Fatal(err)
	}
	w.send("insurer", programs.TypeDefine, programs.Define{ID: "STEPS", Title: "8,000 steps on 20 days", Points: 100, PeriodDays: 30,
		Rule: `readings.size() >= 20`, Categories: []string{"vital-signs"}})
	if err := w.pa.EnrollProgram(w.ctx, "STEPS", time.Now().AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}

	b := w.browser(1280, 900)
	w.login(b, "patient")
	w.run(b, chromedp.Navigate(w.url+"/care"), chromedp.WaitVisible(chromedp.CSS("#program-id")))
	s := w.mainText(b)
	for _, want := range []string{"doctor,", "booked · may see laboratory, encounters until", "(follow-up 3 days)", "requested", "for hospital · asked by doctor"} {
		if !strings.Contains(s, want) {
			t.Fatalf("the care page lacks %q: %s", want, s)
		}
	}
	w.run(b, chromedp.SetValue(chromedp.CSS("#program-id"), "STEPS"), chromedp.Submit(chromedp.CSS("#program-id")), chromedp.WaitVisible(chromedp.CSS("#program")))
	if s := w.mainText(b); !strings.Contains(s, "8,000 steps on 20 days (STEPS)") || !strings.Contains(s, "0 to spend (0 earned)") {
		t.Fatalf("the program: %s", s)
	}
	w.shoot(b, "patient-care")
	w.run(b, chromedp.Click(chromedp.CSS(`form[action$="/cancel"] button`)), chromedp.WaitVisible(chromedp.CSS(".message")))
	if s := w.mainText(b); !strings.Contains(s, "The consultation is cancelled") || !strings.Contains(s, "cancelled · may see") || strings.Contains(s, "Cancel consultation") {
		t.Fatalf("after cancelling: %s", s)
	}
	w.run(b, chromedp.Navigate(w.url+"/care?program=NOPE"), chromedp.WaitVisible(chromedp.CSS(".error")))
	if s := w.mainText(b); !strings.Contains(s, "No program NOPE is defined") {
		t.Fatalf("an unknown program: %s", s)
	}
	w.logout(b)
	w.login(b, "doctor")
	w.run(b, chromedp.Navigate(w.url+"/care"), chromedp.WaitVisible(chromedp.CSS("main")))
	if s := w.mainText(b); !strings.Contains(s, "My care is a patient's page") {
		t.Fatalf("a clinician's care page: %s", s)
	}
}

// TestAttackPortalCare: the care page's cancel form without the session's token cancels
// nothing; a clinician's session (which the ledger would let cancel its own consultation) has no
// care page to cancel from; a consultation id that is not the patient's, or not a number, is
// refused; the patient's own form cancels.
func TestAttackPortalCare(t *testing.T) {
	w := startPortal(t)
	id, _, err := w.pa.BookConsultation(w.ctx, w.patient, agent.Booking{Practitioner: w.address("doctor"), Categories: []string{"laboratory"},
		Start: time.Now().Add(2 * time.Hour), Minutes: 30}, nil)
	if err != nil {
		t.Fatal(err)
	}
	status := func() string {
		t.Helper()
		cs, err := w.reads.Consultations(w.ctx, w.patient)
		if err != nil || len(cs) != 1 {
			t.Fatalf("consultations: %+v %v", cs, err)
		}
		return cs[0].Status
	}
	session := func(account string) (post func(path, csrf string) (int, string), csrf string) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar}
		if _, err := hc.PostForm(w.url+"/login", url.Values{"account": {account}}); err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(w.url + "/records")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_, rest, _ := strings.Cut(string(body), `name="csrf" value="`)
		csrf, _, _ = strings.Cut(rest, `"`)
		return func(path, token string) (int, string) {
			t.Helper()
			resp, err := hc.PostForm(w.url+path, url.Values{"csrf": {token}})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}, csrf
	}
	cancelPath := "/care/consultations/" + strconv.FormatUint(id, 10) + "/cancel"
	post, csrf := session("patient")
	if code, _ := post(cancelPath, ""); code != http.StatusForbidden || status() != "booked" {
		t.Fatalf("a cancel without the token: %d, %s", code, status())
	}
	docPost, docCSRF := session("doctor")
	if code, body := docPost(cancelPath, docCSRF); code != http.StatusNotFound || status() != "booked" {
		t.Fatalf("a clinician's cancel through the portal: %d %s, %s", code, body, status())
	}
	for _, path := range []string{"/care/consultations/999/cancel", "/care/consultations/x/cancel"} {
		if code, body := post(path, csrf); code != http.StatusBadRequest || !strings.Contains(body, "not cancelled") && !strings.Contains(body, "No such consultation") {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	if code, body := post(cancelPath, csrf); code != http.StatusOK || !strings.Contains(body, "The consultation is cancelled") || status() != "cancelled" {
		t.Fatalf("the patient's cancel: %d, %s", code, status())
	}
}
