package portal_test

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/trials"
	"github.com/medchain/medchain/tx"
)

// TestPortalTrial: in a real browser, the patient looks a trial up, reads its registration and
// consents to the protocol version in effect (the portal names accounts by their keys' names in
// its keyring first) at a site for laboratory data; the site's
// investigator then reads the patient's lab result for the trial; the regulator sees the
// participant and that read on the trial's page; the patient withdraws, and the investigator
// reads no more.
func TestPortalTrial(t *testing.T) {
	w := startPortal(t)
	for _, org := range []struct{ key, kind, name string }{{"sponsor", "trial_sponsor", "Example Trials"}, {"ethics", "hospital", "Example Ethics Committee"}} {
		k, err := w.kr.Create(org.key, "")
		if err != nil {
			t.Fatal(err)
		}
		w.send(org.key, identity.TypeRegister, identity.Register{Role: identity.RoleOrganization, OrgKind: org.kind, Name: org.name, EncryptionKey: k.Encryption.PublicKey().Bytes()})
		w.send("registrar", identity.TypeAttest, identity.Attest{Subject: k.Address, Licence: "L-" + org.key, Jurisdiction: "NL", ExpiresAt: time.Now().AddDate(1, 0, 0)})
	}
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	w.send("sponsor", trials.TypeRegister, trials.Register{ID: "MC-9", Title: "Drug Z in heart failure", ProtocolHash: hash("protocol"), SAPHash: hash("sap"),
		Outcomes: trials.Commitment(trials.Outcomes{Primary: "hospitalisation at one year"}, hash("salt")), Ethics: w.address("ethics"),
		Sites: []trials.Site{{ID: "site-1", Org: w.address("hospital"), Investigators: []tx.Address{w.address("doctor")}}}})

	b := w.browser(1280, 900)
	w.login(b, "patient")
	w.run(b, chromedp.Navigate(w.url+"/trials"), chromedp.WaitVisible(chromedp.CSS("#trial-id")))
	if s := w.mainText(b); !strings.Contains(s, "You take part in no clinical trial") {
		t.Fatalf("the patient's trials before consenting: %s", s)
	}
	w.run(b, chromedp.SetValue(chromedp.CSS("#trial-id"), "MC-9"), chromedp.Submit(chromedp.CSS("#trial-id")), chromedp.WaitVisible(chromedp.CSS("#site")))
	if s := w.mainText(b); !strings.Contains(s, "Sponsor\nsponsor") || !strings.Contains(s, "site-1: hospital") || !strings.Contains(s, "You do not take part") {
		t.Fatalf("the trial's page: %s", s)
	}
	w.shoot(b, "patient-trial")
	w.run(b, chromedp.SetValue(chromedp.CSS("#site"), "site-1"), chromedp.Click(chromedp.CSS(`input[name=category][value=laboratory]`)),
		chromedp.Click(chromedp.CSS(`input[name=read]`)), chromedp.Click(chromedp.CSS(`form[action$="/consent"] button`)), chromedp.WaitVisible(chromedp.CSS(".message")))
	if s := w.mainText(b); !strings.Contains(s, "Your consent is recorded") || !strings.Contains(s, "The trial may use: laboratory") {
		t.Fatalf("after consenting: %s", s)
	}

	// The investigator reads the lab result for the trial, and for nothing else.
	dk, err := w.kr.Get("doctor", "")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := client.NewSigner(w.ctx, w.c, dk)
	if err != nil {
		t.Fatal(err)
	}
	research := agent.New(ds, agent.Config{Purpose: "CLINTRCH"})
	if plains, err := research.Search(w.ctx, w.patient, "Observation", nil); err != nil || len(plains) != 1 {
		t.Fatalf("the investigator's research read: %d results, %v", len(plains), err)
	}
	w.logout(b)
	w.login(b, "regulator")
	w.run(b, chromedp.Navigate(w.url+"/trials/MC-9"), chromedp.WaitVisible(chromedp.CSS("#participants")))
	if s := w.mainText(b); !strings.Contains(s, string(w.patient)) || !strings.Contains(s, "doctor") || strings.Contains(s, "No participant's data has been read") {
		t.Fatalf("the regulator's view of the trial: %s", s)
	}
	w.shoot(b, "regulator-trial")
	w.logout(b)

	w.login(b, "patient")
	w.run(b, chromedp.Navigate(w.url+"/trials/MC-9"), chromedp.WaitVisible(chromedp.CSS(`form[action$="/withdraw"]`)),
		chromedp.Click(chromedp.CSS(`form[action$="/withdraw"] button`)), chromedp.WaitVisible(chromedp.CSS(".message")))
	if s := w.mainText(b); !strings.Contains(s, "You have withdrawn") {
		t.Fatalf("after withdrawing: %s", s)
	}
	if plains, err := research.Search(w.ctx, w.patient, "Observation", nil); err != nil || len(plains) != 0 {
		t.Fatalf("the investigator's read after the withdrawal: %d results, %v", len(plains), err)
	}
}
