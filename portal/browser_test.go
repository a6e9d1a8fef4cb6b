package portal_test

import (
	"context"
	_ "embed"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/contracts/supply"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/portal"
	"github.com/medchain/medchain/tx"
)

// labResult is the demo patient's lab result the clinician reads in the browser test.
const labResult = `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/example"},
 "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
 "code":{"coding":[{"system":"http://loinc.org","code":"718-7","display":"Hemoglobin [Mass/volume] in Blood"}]},
 "valueQuantity":{"value":13.2,"unit":"g/dL"},"effectiveDateTime":"2026-11-30"}`

// world is a dev node with its demo accounts and the portal in front of it.
type world struct {
	t       testing.TB
	ctx     context.Context
	url     string
	patient tx.Address
	reads   *client.Client // signed reads as the patient
	c       *client.Client
	pa      *agent.Agent // the patient's
	node    string
	kr      *keyring.File
	shots   string // where screenshots go
	portal  *portal.Server
}

func startPortal(t testing.TB) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real node and a browser")
	}
	home := t.TempDir()
	ports, err := node.FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.EnsureDev(home, ports); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(home, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	c := client.New(n.APIAddr)
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.OpenFile(node.KeyringDir(home))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := kr.Get("patient", "")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := client.NewSigner(ctx, c, pk)
	if err != nil {
		t.Fatal(err)
	}
	// The patient's own lab result, written by the patient's agent.
	pa := agent.New(ps, agent.Config{Patients: map[string]tx.Address{"example": pk.Address}})
	if _, err := pa.Add(ctx, []byte(labResult)); err != nil {
		t.Fatal(err)
	}
	p, err := portal.New(portal.Config{Keyring: kr, Node: c, Dev: true, Patients: map[string]tx.Address{"example": pk.Address}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	shots := t.TempDir()
	if os.Getenv("MEDCHAIN_SCREENSHOTS") != "" { // refresh the README's screenshots
		shots = filepath.Join("..", "docs", "screenshots")
	}
	return &world{t: t, ctx: ctx, url: srv.URL, patient: pk.Address, reads: ps.Reads(), c: c, pa: pa, node: n.APIAddr, kr: kr, shots: shots, portal: p}
}

// browser starts headless Chromium (Debian's chromium package) with a viewport of w x h.
func (w *world) browser(width, height int) context.Context {
	w.t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		w.t.Fatal("the browser tests need Chromium (apt-get install chromium; .ci/run installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(width, height), chromedp.Flag("disable-dev-shm-usage", true),
		// A fake camera (a generated test pattern) that needs no permission prompt.
		chromedp.Flag("use-fake-device-for-media-stream", true), chromedp.Flag("use-fake-ui-for-media-stream", true))
	actx, cancel := chromedp.NewExecAllocator(w.ctx, opts...)
	w.t.Cleanup(cancel)
	bctx, cancel2 := chromedp.NewContext(actx)
	w.t.Cleanup(cancel2)
	if err := chromedp.Do(bctx); err != nil { // starts the browser on bctx, which it lives as long as
		w.t.Fatalf("start Chromium: %v", err)
	}
	return bctx
}

// run runs browser actions, failing the test with what the page said on an error.
func (w *world) run(b context.Context, steps ...chromedp.Action[chromedp.Void]) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(b, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		short, cancel := context.WithTimeout(b, 5*time.Second)
		defer cancel()
		text, _ := chromedp.Run(short, chromedp.Text(chromedp.CSS("body")))
		w.t.Fatalf("browser: %v\npage says: %s", err, text)
	}
}

// value runs one browser action that returns a value.
func value[T any](w *world, b context.Context, a chromedp.Action[T]) T {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(b, 90*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		w.t.Fatalf("browser: %v", err)
	}
	return v
}

// login logs in as a demo account through the login page.
func (w *world) login(b context.Context, name string) {
	w.t.Helper()
	w.run(b, chromedp.Navigate(w.url+"/login"),
		chromedp.SetValue(chromedp.CSS("#account"), name),
		chromedp.Click(chromedp.CSS("form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("header nav")))
}

func (w *world) logout(b context.Context) {
	w.t.Helper()
	w.run(b, chromedp.Click(chromedp.CSS("form.logout button")), chromedp.WaitVisible(chromedp.CSS("#passphrase")))
}

// mainText is the page's main content as text.
func (w *world) mainText(b context.Context) string {
	return value(w, b, chromedp.Text(chromedp.CSS("main")))
}

// axeSource is axe-core (testdata/axe-core), the accessibility checker run on every page shot.
//
//go:embed testdata/axe-core/axe.min.js
var axeSource string

// axeViolation is one failed axe-core rule and the elements that fail it.
type axeViolation struct {
	ID, Impact, Help string
	Nodes            []string
}

// accessible runs axe-core's WCAG 2.1 A and AA rules on the page and fails the test on any
// violation, naming the rule and the elements.
func (w *world) accessible(b context.Context, name string) {
	w.t.Helper()
	if !value(w, b, chromedp.Evaluate[bool](`typeof axe !== "undefined"`)) {
		value(w, b, chromedp.Evaluate[bool](axeSource+"\n;true"))
	}
	vs := value(w, b, chromedp.Evaluate[[]axeViolation](`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}).then(r =>
		r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))})))`, chromedp.EvalAwaitPromise))
	for _, v := range vs {
		w.t.Errorf("%s: accessibility (%s, %s): %s: %v", name, v.ID, v.Impact, v.Help, v.Nodes)
	}
}

// shoot checks the page's accessibility and saves a screenshot of it.
func (w *world) shoot(b context.Context, name string) {
	w.t.Helper()
	w.accessible(b, name)
	png := value(w, b, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(w.shots, 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.shots, name+".png"), png, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// TestPortalConsentFlow is the scenario in a real browser: the patient grants the
// doctor access to laboratory data, the doctor reads the lab result, the patient sees that
// access in the audit trail and revokes, and the doctor is then denied.
func TestPortalConsentFlow(t *testing.T) {
	w := startPortal(t)
	b := w.browser(1280, 900)

	w.run(b, chromedp.Navigate(w.url+"/login"), chromedp.WaitVisible(chromedp.CSS("#account")))
	w.shoot(b, "login")
	w.login(b, "patient")
	if s := w.mainText(b); !strings.Contains(s, "Hemoglobin") || !strings.Contains(s, "13.2 g/dL") {
		t.Fatalf("the patient's timeline: %s", s)
	}
	w.shoot(b, "patient-records")
	// The grantee picker finds the doctor in the ledger's directory by a part of its name.
	w.run(b, chromedp.Navigate(w.url+"/consents?find=ADA+ex"), chromedp.WaitVisible(chromedp.CSS("#grantee")))
	if opts := value(w, b, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#grantee option")].map(o => o.value).filter(v => v)`)); len(opts) != 1 || opts[0] != string(w.address("doctor")) {
		t.Fatalf("the directory found %v for \"ADA ex\", want only the doctor: %s", opts, w.mainText(b))
	}
	w.run(b, chromedp.SetValue(chromedp.CSS("#grantee"), string(w.address("doctor"))),
		chromedp.Click(chromedp.CSS(`input[name=category][value=laboratory]`)),
		chromedp.SetValue(chromedp.CSS("#purpose"), "TREAT"),
		chromedp.Click(chromedp.CSS(`form[method=post][action="/consents"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".message")))
	if s := w.mainText(b); !strings.Contains(s, "Access granted") || !strings.Contains(s, "laboratory") {
		t.Fatalf("after granting: %s", s)
	}
	w.shoot(b, "patient-consents")
	w.logout(b)

	w.login(b, "doctor")
	// The patient is among those who granted the doctor access; the link opens the records.
	w.run(b, chromedp.Navigate(w.url+"/patients"), chromedp.WaitVisible(chromedp.CSS("main h1")))
	if s := w.mainText(b); !strings.Contains(s, "laboratory") || !strings.Contains(s, "Treatment") {
		t.Fatalf("the doctor's patients: %s", s)
	}
	w.shoot(b, "clinician-patients")
	// Opening the records shows the access requests' progress, then the records.
	w.run(b, chromedp.Click(chromedp.CSS(`ul.list > li > a`)), chromedp.WaitVisible(chromedp.CSS(".records-loaded")))
	if s := w.mainText(b); !strings.Contains(s, "Hemoglobin") || !strings.Contains(s, "Asking the ledger for access") ||
		!regexp.MustCompile(`on the ledger \(block \d+\): 1 of \d+ categor(y|ies) granted`).MatchString(s) {
		t.Fatalf("the doctor does not see the granted lab result: %s", s)
	}
	w.shoot(b, "clinician-patient")
	w.logout(b)

	w.login(b, "patient")
	w.run(b, chromedp.Navigate(w.url+"/audit"), chromedp.WaitVisible(chromedp.CSS("table")))
	if s := w.mainText(b); !strings.Contains(s, "doctor") || !strings.Contains(s, "granted") {
		t.Fatalf("the audit trail does not show the doctor's access: %s", s)
	}
	w.shoot(b, "patient-audit")
	w.run(b, chromedp.Navigate(w.url+"/consents"),
		chromedp.Click(chromedp.CSS(`form[action$="/revoke"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".message")))
	if s := w.mainText(b); !strings.Contains(s, "Access revoked") {
		t.Fatalf("after revoking: %s", s)
	}
	w.logout(b)

	w.login(b, "doctor")
	w.run(b, chromedp.Navigate(w.url+"/patients/example"), chromedp.WaitVisible(chromedp.CSS(".records-loaded")))
	if s := w.mainText(b); strings.Contains(s, "Hemoglobin") || !strings.Contains(s, "no access") {
		t.Fatalf("the doctor still sees the lab result after revocation: %s", s)
	}
	w.run(b, chromedp.Navigate(w.url+"/patients"), chromedp.WaitVisible(chromedp.CSS("main h1")))
	if s := w.mainText(b); !strings.Contains(s, "No patient's grant to you is in force") {
		t.Fatalf("the doctor's patients after revocation: %s", s)
	}
}

// TestPortalPhoneViewport: every page renders on a phone-sized screen without horizontal
// scrolling.
func TestPortalPhoneViewport(t *testing.T) {
	w := startPortal(t)
	b := w.browser(375, 667)
	// Headless Chromium keeps windows at least 500 pixels wide: emulate the phone's viewport.
	w.run(b, chromedp.EmulateViewport(375, 667, chromedp.EmulateMobile))
	check := func(path string) {
		t.Helper()
		w.run(b, chromedp.Navigate(w.url+path), chromedp.WaitVisible(chromedp.CSS("main")))
		fits := value(w, b, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
		if !fits {
			t.Errorf("%s scrolls sideways on a phone", path)
		}
		w.accessible(b, "phone "+path)
	}
	check("/login")
	w.login(b, "patient")
	for _, p := range []string{"/records", "/consents", "/audit", "/network", "/trials"} {
		check(p)
	}
	w.run(b, chromedp.Navigate(w.url+"/consents"), chromedp.WaitVisible(chromedp.CSS("main")))
	if width := value(w, b, chromedp.Evaluate[int](`window.innerWidth`)); width != 375 {
		t.Fatalf("the viewport is %d pixels wide, not a phone's 375", width)
	}
	w.shoot(b, "phone-consents")
	w.logout(b)
	w.login(b, "doctor")
	for _, p := range []string{"/patients", "/patients/example", "/pharmacy?code=%2801%2909506000134352%2821%29X"} {
		check(p)
	}
}

// address is a demo account's address.
func (w *world) address(name string) tx.Address {
	w.t.Helper()
	p, err := w.kr.Show(name)
	if err != nil {
		w.t.Fatal(err)
	}
	return p.Address
}

// send submits a transaction as a demo account.
func (w *world) send(name, typ string, msg any) {
	w.t.Helper()
	k, err := w.kr.Get(name, "")
	if err != nil {
		w.t.Fatal(err)
	}
	s, err := client.NewSigner(w.ctx, w.c, k)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := s.Send(w.ctx, typ, msg); err != nil {
		w.t.Fatalf("%s %s: %v", name, typ, err)
	}
}

// TestPortalPharmacist: the pharmacist pastes a counterfeit code and is told so (with nothing to
// dispense), then a genuine pack, dispenses it, and the pack then verifies as already dispensed.
func TestPortalPharmacist(t *testing.T) {
	w := startPortal(t)
	const gtin = "09506000134352"
	genuine := "(01)" + gtin + "(17)291231(10)LOT42(21)S1"
	w.send("manufacturer", supply.TypeRegisterProduct, supply.RegisterProduct{GTIN: gtin, Name: "Insulin 100 IU/ml", MinDeciC: 20, MaxDeciC: 80})
	w.send("manufacturer", supply.TypeCommission, supply.Commission{GTIN: gtin, Lot: "LOT42", Expiry: "2029-12-31", Serials: []string{"S1"}})
	w.send("manufacturer", supply.TypeShip, supply.Ship{To: w.address("pharmacy"), Items: []string{genuine}})
	w.send("pharmacy", supply.TypeReceive, supply.Receive{Shipment: 1})

	b := w.browser(1280, 900)
	w.login(b, "pharmacy")
	verify := func(code string) string {
		t.Helper()
		// The form's GET, as a navigation: waiting after a click could see the previous verdict.
		w.run(b, chromedp.Navigate(w.url+"/pharmacy?code="+url.QueryEscape(code)), chromedp.WaitVisible(chromedp.CSS(".verdict")))
		return w.mainText(b)
	}
	if s := verify("(01)" + gtin + "(21)FAKE"); !strings.Contains(s, "SUSPECT COUNTERFEIT") || strings.Contains(s, "Dispense") {
		t.Fatalf("a counterfeit: %s", s)
	}
	w.shoot(b, "pharmacist-counterfeit")
	if s := verify(genuine); !strings.Contains(s, "authentic") {
		t.Fatalf("a genuine pack: %s", s)
	}
	w.run(b, chromedp.Click(chromedp.CSS(`form[action="/pharmacy/dispense"] button`)), chromedp.WaitVisible(chromedp.CSS(".message")))
	if s := w.mainText(b); !strings.Contains(s, "Dispensed") || !strings.Contains(s, "ALREADY DISPENSED") {
		t.Fatalf("after dispensing: %s", s)
	}
	w.shoot(b, "pharmacist-dispensed")

	// The camera: Chromium on Linux has no barcode decoder, so the page gets a BarcodeDetector
	// that "reads" the genuine code from whatever the (fake) camera shows; the camera stream,
	// the page's script and the verification are the real ones.
	b2 := w.browser(1280, 900)
	w.run(b2, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.BarcodeDetector = class {
				static async getSupportedFormats() { return ["data_matrix", "qr_code"]; }
				constructor(opts) { this.formats = opts.formats; }
				async detect(video) {
					if (!(video instanceof HTMLVideoElement) || !video.srcObject || video.videoWidth === 0) return [];
					return [{format: "data_matrix", rawValue: ` + strconv.Quote(genuine) + `}];
				}
			};`})
		return err
	}))
	w.login(b2, "pharmacy")
	w.run(b2, chromedp.Navigate(w.url+"/pharmacy"), chromedp.WaitVisible(chromedp.CSS("#scan")),
		chromedp.Click(chromedp.CSS("#scan")), chromedp.WaitVisible(chromedp.CSS(".verdict")))
	if s := w.mainText(b2); !strings.Contains(s, "ALREADY DISPENSED") || !strings.Contains(s, "Insulin") {
		t.Fatalf("after scanning the dispensed pack: %s", s)
	}
}

// TestPortalClinicianAddsRecord: with the patient's write grant for vital signs, the doctor
// adds a heart rate through the form and the patient sees it in the timeline; a condition,
// which the grant does not cover, is refused with a clear message.
func TestPortalClinicianAddsRecord(t *testing.T) {
	w := startPortal(t)
	if _, err := w.pa.Grant(w.ctx, consent.GrantMsg{Grantee: w.address("doctor"), Categories: []string{"vital-signs"},
		Purposes: []string{"TREAT"}, Write: true, Expiry: time.Now().AddDate(0, 1, 0)}); err != nil {
		t.Fatal(err)
	}
	b := w.browser(1280, 900)
	w.login(b, "doctor")
	w.run(b, chromedp.Navigate(w.url+"/patients/example/add?kind=vital-signs"),
		chromedp.SetValue(chromedp.CSS("#code"), "8867-4"), chromedp.SetValue(chromedp.CSS("#display"), "Heart rate"),
		chromedp.SetValue(chromedp.CSS("#value"), "72"), chromedp.SetValue(chromedp.CSS("#unit"), "/min"),
		chromedp.Click(chromedp.CSS(`form.card button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(".message")))
	w.shoot(b, "clinician-add-record")
	w.run(b, chromedp.Navigate(w.url+"/patients/example/add?kind=condition"),
		chromedp.SetValue(chromedp.CSS("#code"), "38341003"), chromedp.SetValue(chromedp.CSS("#display"), "Hypertension"),
		chromedp.Click(chromedp.CSS(`form.card button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(".error")))
	if s := w.mainText(b); !strings.Contains(s, "Not added") {
		t.Fatalf("a condition without a grant: %s", s)
	}
	w.logout(b)
	w.login(b, "patient")
	if s := w.mainText(b); !strings.Contains(s, "Heart rate") || !strings.Contains(s, "72 /min") || strings.Contains(s, "Hypertension") {
		t.Fatalf("the patient's timeline: %s", s)
	}
}

// TestPortalBreakGlass: with no grant, the doctor (attested for emergencies, affiliated with the
// patient's emergency hospital) breaks the glass with a reason and reads the patient's allergy;
// the patient is notified, sees the access highlighted, and reviews it as not justified.
func TestPortalBreakGlass(t *testing.T) {
	w := startPortal(t)
	if err := w.pa.Settings(w.ctx, w.patient, records.Settings{EmergencyOrgs: []tx.Address{w.address("hospital")}}); err != nil {
		t.Fatal(err)
	}
	w.send("hospital", identity.TypeAffiliate, identity.Affiliate{Practitioner: w.address("doctor"), Until: time.Now().AddDate(1, 0, 0)})
	if _, err := w.pa.Add(w.ctx, []byte(`{"resourceType":"AllergyIntolerance","patient":{"reference":"Patient/example"},"criticality":"high",
		"code":{"coding":[{"system":"http://snomed.info/sct","code":"764146007","display":"Penicillin"}]}}`)); err != nil {
		t.Fatal(err)
	}
	b := w.browser(1280, 900)
	w.login(b, "doctor")
	w.run(b, chromedp.Navigate(w.url+"/patients/example/emergency"),
		chromedp.SetValue(chromedp.CSS("#reason"), "urgent"), // too short
		chromedp.Click(chromedp.CSS(`form.card button`)), chromedp.WaitVisible(chromedp.CSS(".error")))
	w.run(b, chromedp.SetValue(chromedp.CSS("#reason"), "Unconscious on arrival after a car accident; needs allergies before surgery"),
		chromedp.Click(chromedp.CSS(`form.card button`)), chromedp.WaitVisible(chromedp.CSS(".message")))
	if s := w.mainText(b); !strings.Contains(s, "Emergency access is open") || !strings.Contains(s, "Penicillin") {
		t.Fatalf("after breaking the glass: %s", s)
	}
	w.shoot(b, "clinician-break-glass")
	w.logout(b)

	w.login(b, "patient")
	w.run(b, chromedp.Navigate(w.url+"/notifications"), chromedp.WaitVisible(chromedp.CSS("main")))
	if s := w.mainText(b); !strings.Contains(s, "doctor") {
		t.Fatalf("notifications: %s", s)
	}
	w.shoot(b, "patient-notifications")
	// The audit trail highlights the emergency access, with a way to review it.
	w.run(b, chromedp.Navigate(w.url+"/audit"), chromedp.WaitVisible(chromedp.CSS("tr.emergency")),
		chromedp.Click(chromedp.CSS(`tr.emergency a[href="/emergencies"]`)))
	w.run(b, chromedp.WaitVisible(chromedp.CSS(".emergency-session"))) // the Review link led here
	if s := w.mainText(b); !strings.Contains(s, "car accident") {
		t.Fatalf("the patient cannot read the reason: %s", s)
	}
	w.shoot(b, "patient-emergencies")
	w.run(b, chromedp.Click(chromedp.CSS(`input[name=justified][value=no]`)), chromedp.Click(chromedp.CSS(`form[action$="/review"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".message")))
	if s := w.mainText(b); !strings.Contains(s, "not justified") {
		t.Fatalf("after the review: %s", s)
	}
}

// TestPortalNetworkLive: the network page shows the node healthy, its validator and the latest
// blocks, and follows the chain without a reload: a transaction sent meanwhile appears, by type.
func TestPortalNetworkLive(t *testing.T) {
	w := startPortal(t)
	b := w.browser(1280, 900)
	w.login(b, "hospital")
	w.run(b, chromedp.Navigate(w.url+"/network"), chromedp.WaitVisible(chromedp.CSS("#height")))
	if s := w.mainText(b); !strings.Contains(s, "Healthy") || !strings.Contains(s, "Validators") {
		t.Fatalf("the network page: %s", s)
	}
	value(w, b, chromedp.Evaluate[bool](`window.sameDocument = true`))
	w.send("hospital", identity.TypeAffiliate, identity.Affiliate{Practitioner: w.address("doctor"), Until: time.Now().AddDate(1, 0, 0)})
	value(w, b, chromedp.Poll[bool](`[...document.querySelectorAll("#live .txtype")].some(e => e.textContent === "identity/affiliate")`,
		chromedp.WithPollingTimeout(30*time.Second)))
	if !value(w, b, chromedp.Evaluate[bool](`window.sameDocument === true`)) {
		t.Fatal("the page was reloaded instead of updated")
	}
	w.shoot(b, "network")
}

// TestPortalEraseAndGuardians: the patient names a guardian and removes it again, then erases
// a record after confirming (a form without the confirmation erases nothing), and the record is
// gone from the timeline.
func TestPortalEraseAndGuardians(t *testing.T) {
	w := startPortal(t)
	b := w.browser(1280, 900)
	w.login(b, "patient")
	doctor := string(w.address("doctor"))
	w.run(b, chromedp.Navigate(w.url+"/guardians"), chromedp.SetValue(chromedp.CSS("#guardian"), doctor),
		chromedp.Click(chromedp.CSS(`form[action="/guardians"] button`)), chromedp.WaitVisible(chromedp.CSS(".message")))
	if s := w.mainText(b); !strings.Contains(s, "Guardian added") || !strings.Contains(s, "doctor") {
		t.Fatalf("after adding a guardian: %s", s)
	}
	if acc, _, err := w.c.Account(w.ctx, w.patient, false); err != nil || len(acc.Guardians) != 1 || string(acc.Guardians[0]) != doctor {
		t.Fatalf("the ledger's guardians: %+v %v", acc, err)
	}
	w.shoot(b, "patient-guardians")
	w.run(b, chromedp.Click(chromedp.CSS(`form[action$="/remove"] button`)), chromedp.WaitVisible(chromedp.CSS("p.none")))
	if s := w.mainText(b); !strings.Contains(s, "You have no guardian") {
		t.Fatalf("after removing the guardian: %s", s)
	}

	observations := func() int {
		t.Helper()
		plains, err := w.pa.Search(w.ctx, w.patient, "Observation", nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(plains)
	}
	before := observations()
	w.run(b, chromedp.Navigate(w.url+"/records"), chromedp.WaitVisible(chromedp.CSS(".record")),
		chromedp.Click(chromedp.CSS(`a[aria-label="Erase Hemoglobin [Mass/volume] in Blood"]`)), chromedp.WaitVisible(chromedp.CSS("button.danger")))
	w.shoot(b, "patient-erase")
	w.run(b, chromedp.Click(chromedp.CSS("button.danger")), chromedp.WaitVisible(chromedp.CSS(".error")))
	if n := observations(); n != before {
		t.Fatalf("an unconfirmed erasure erased: %d observations, %d before", n, before)
	}
	w.run(b, chromedp.Click(chromedp.CSS(`input[name=confirm]`)), chromedp.Click(chromedp.CSS("button.danger")),
		chromedp.WaitVisible(chromedp.CSS(".message")))
	if s := w.mainText(b); !strings.Contains(s, "The record is erased") || strings.Contains(s, "Hemoglobin") {
		t.Fatalf("after erasing: %s", s)
	}
	if n := observations(); n != before-1 {
		t.Fatalf("after erasing one of %d observations, %d are readable", before, n)
	}
}
