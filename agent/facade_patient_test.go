package agent_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/custody"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/tx"
)

const (
	mrnSystem = "urn:oid:2.16.840.1.113883.19.5"
	mrnCanary = "MRN-CANARY-90210-77"
)

func patientWithMRN(mrn, family string) []byte {
	return []byte(`{"resourceType":"Patient","id":"ignored-by-create","identifier":[{"system":"` + mrnSystem + `","value":"` + mrn + `"}],` +
		`"name":[{"family":"` + family + `","given":["Ada"]}],"gender":"female","birthDate":"1981-03-14"}`)
}

// custodialFacade serves name's agent, with a custody store of its own (it registers patients),
// as a FHIR facade.
func (w *world) custodialFacade(name string, cfg agent.Config) (*facadeClient, *agent.Agent, *custody.Store) {
	w.t.Helper()
	store, damaged, err := custody.Open(w.t.TempDir(), w.keys[name].Key)
	if err != nil || len(damaged) != 0 {
		w.t.Fatal(err, damaged)
	}
	cfg.Custody = store
	a := agent.New(w.keys[name], cfg)
	srv := httptest.NewServer(agent.NewFacade(a, token, nil))
	w.t.Cleanup(srv.Close)
	return &facadeClient{t: w.t, base: srv.URL}, a, store
}

// entries decodes a searchset's resources' ids.
func entryIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var b bundle
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("bundle: %v: %s", err, body)
	}
	var ids []string
	for _, e := range b.Entry {
		var r struct{ ID string }
		json.Unmarshal(e.Resource, &r)
		ids = append(ids, r.ID)
	}
	return ids
}

// TestFacadeRegistersPatientsInCustody (issue 11, part 1): POST /Patient through an
// organization's agent registers a patient account whose keys the agent keeps; the organization
// reads and writes by the account's grant; the MRN is searchable in the agent and never reaches
// the ledger or the node's disk; the patient claims the account from their own device, after
// which the organization holds no key of it and loses access when the patient revokes the grant.
func TestFacadeRegistersPatientsInCustody(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	custodyDir := t.TempDir()
	store, damaged, err := custody.Open(custodyDir, w.keys["doctor"].Key)
	if err != nil || len(damaged) != 0 {
		t.Fatal(err, damaged)
	}
	hosp := agent.New(w.keys["doctor"], agent.Config{Custody: store, Trust: w.trust})
	srv := httptest.NewServer(agent.NewFacade(hosp, token, nil))
	defer srv.Close()
	fc := &facadeClient{t: t, base: srv.URL}

	status, hdr, body := fc.do("POST", "/fhir/Patient", patientWithMRN(mrnCanary, "Lovelace-Canary"), true)
	if status != http.StatusCreated {
		t.Fatalf("POST /Patient = %d %s", status, body)
	}
	id := idOf(hdr.Get("Location"))
	if id == "ignored-by-create" || !strings.HasSuffix(hdr.Get("Location"), "/_history/1") || !bytes.Contains(body, []byte(`"id":"`+id+`"`)) {
		t.Fatalf("created at %s: %s", hdr.Get("Location"), body)
	}
	if status, _, body = fc.do("GET", "/fhir/Patient/"+id, nil, true); status != http.StatusOK || !bytes.Contains(body, []byte("Lovelace-Canary")) {
		t.Fatalf("GET Patient/%s = %d %s", id, status, body)
	}
	if status, _, body = fc.do("GET", "/fhir/Patient/"+id+"/_history/1", nil, true); status != http.StatusOK {
		t.Fatalf("vread = %d %s", status, body)
	}

	// The MRN finds the patient, in the agent's directory; a conditional create by it finds the
	// patient instead of registering another.
	for query, want := range map[string]int{
		"identifier=" + mrnSystem + "|" + mrnCanary: 1, "identifier=" + mrnCanary: 1, "identifier=other|" + mrnCanary: 0,
		"identifier=|" + mrnCanary: 0, "_id=" + id: 1, "_id=nobody": 0,
	} {
		status, _, body := fc.do("GET", "/fhir/Patient?"+strings.ReplaceAll(query, "|", "%7C"), nil, true)
		if ids := entryIDs(t, body); status != http.StatusOK || len(ids) != want || want == 1 && ids[0] != id {
			t.Errorf("GET /Patient?%s = %d, ids %v, want %d", query, status, ids, want)
		}
	}
	if status, _, _ = fc.do("GET", "/fhir/Patient?name=Lovelace", nil, true); status != http.StatusBadRequest {
		t.Errorf("an unsupported Patient search parameter: %d", status)
	}
	status, hdr, _ = fc.doWith("POST", "/fhir/Patient", patientWithMRN(mrnCanary, "Lovelace-Canary"),
		map[string]string{"If-None-Exist": "identifier=" + mrnSystem + "|" + mrnCanary})
	if status != http.StatusOK || idOf(hdr.Get("Location")) != id {
		t.Fatalf("conditional create of a registered MRN = %d at %s", status, hdr.Get("Location"))
	}
	if n := len(store.Patients()); n != 1 {
		t.Fatalf("%d patients in custody after a conditional create", n)
	}

	// The organization writes and reads the patient's records by the account's grant.
	status, hdr, body = fc.do("POST", "/fhir/Observation", observation(id, "72"), true)
	if status != http.StatusCreated {
		t.Fatalf("POST Observation for the new patient = %d %s", status, body)
	}
	obs := idOf(hdr.Get("Location"))
	// An update of the demographics keeps the directory's identifiers in step; PUT under a new
	// id registers another patient (update as create).
	status, _, body = fc.doWith("PUT", "/fhir/Patient/"+id, bytes.Replace(patientWithMRN("MRN-NEW-1", "Lovelace-Canary"), []byte(`"ignored-by-create"`), []byte(`"`+id+`"`), 1),
		map[string]string{"If-Match": `W/"1"`})
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"versionId":"2"`)) {
		t.Fatalf("PUT Patient = %d %s", status, body)
	}
	if _, _, body = fc.do("GET", "/fhir/Patient?identifier=MRN-NEW-1", nil, true); len(entryIDs(t, body)) != 1 {
		t.Fatalf("the updated MRN is not searchable: %s", body)
	}
	if status, _, body = fc.do("PUT", "/fhir/Patient/baby-2", []byte(`{"resourceType":"Patient","id":"baby-2","gender":"male"}`), true); status != http.StatusCreated {
		t.Fatalf("PUT-create of Patient/baby-2 = %d %s", status, body)
	}
	if status, _, _ = fc.do("GET", "/fhir/Patient/baby-2", nil, true); status != http.StatusOK {
		t.Fatalf("GET Patient/baby-2 = %d", status)
	}

	// Neither the MRN nor the name is anywhere on the node's disk, nor in the custody store.
	p, _ := store.ByFHIRID(id)
	acc, _, err := w.c.Account(ctx, p.Address, false)
	if err != nil || acc.Name != "" || acc.Role != "patient" {
		t.Fatalf("the registered account: %+v, %v", acc, err)
	}
	for _, dir := range []string{filepath.Join(w.home, "data"), custodyDir} {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, _ := os.ReadFile(path)
			for _, needle := range []string{mrnCanary, "Lovelace-Canary"} {
				if bytes.Contains(data, []byte(needle)) {
					t.Errorf("%q in clear in %s", needle, path)
				}
			}
			return nil
		})
	}

	// The claim: the organization hands the key over; the patient rotates it on their device.
	if _, err := hosp.ClaimCode(ctx, id, "short"); err == nil {
		t.Fatal("a claim file under a short passphrase")
	}
	claimFile, err := hosp.ClaimCode(ctx, id, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	var mine *keyring.Key
	keep := func(k *keyring.Key) error { mine = k; return nil }
	if _, err := agent.ClaimAccount(ctx, w.c, claimFile, "wrong horse battery", "me", keep); err == nil {
		t.Fatal("claimed with a wrong passphrase")
	}
	if _, err := agent.ClaimAccount(ctx, w.c, claimFile, "correct horse battery", "me", keep); err != nil {
		t.Fatal(err)
	}
	if mine == nil || mine.Address != p.Address {
		t.Fatalf("the claimed key: %+v", mine)
	}
	if _, err := agent.ClaimAccount(ctx, w.c, claimFile, "correct horse battery", "again", keep); err == nil {
		t.Fatal("the same claim file claimed the account twice")
	}
	if _, err := hosp.ClaimCode(ctx, id, "correct horse battery"); !errors.Is(err, custody.ErrClaimed) {
		t.Fatalf("claim code after the claim: %v", err)
	}
	if _, err := store.Key(p.Address); !errors.Is(err, custody.ErrClaimed) {
		t.Fatalf("the custodial key after the claim: %v", err)
	}

	// The patient reads their records with the new key (written for the old one: the holders
	// release them), and revokes the organization's grant; the organization then reads nothing.
	self := agent.New(w.signer("claimed", mine), agent.Config{Trust: w.trust})
	if _, err := self.Read(ctx, obs); err != nil {
		t.Fatalf("the patient reads their record after the claim: %v", err)
	}
	grants, err := w.keys["claimed"].Reads().Grants(ctx, p.Address)
	if err != nil || len(grants) != 1 || grants[0].Grantee != w.keys["doctor"].Address() {
		t.Fatalf("grants: %+v %v", grants, err)
	}
	if err := self.Revoke(ctx, p.Address, grants[0].ID); err != nil {
		t.Fatal(err)
	}
	if status, _, _ = fc.do("GET", "/fhir/Observation/"+obs, nil, true); status != http.StatusNotFound {
		t.Fatalf("the organization reads after the revocation: %d", status)
	}
}

// TestAttackPatientRegistration: only an organization's or practitioner's agent with a custody
// store registers patients; oversized identifiers are refused before anything is sent; an id
// already served is not registered again.
func TestAttackPatientRegistration(t *testing.T) {
	w := startWorld(t)
	// A patient's agent does not register patients, custody store or not.
	store, _, err := custody.Open(t.TempDir(), w.keys["patient"].Key)
	if err != nil {
		t.Fatal(err)
	}
	pat := w.facadeFor("patient", agent.Config{Custody: store})
	if status, _, body := pat.do("POST", "/fhir/Patient", patientWithMRN("1", "X"), true); status != http.StatusForbidden {
		t.Fatalf("a patient's agent registering a patient: %d %s", status, body)
	}
	// Nor does an agent without a custody store.
	doc := w.facadeFor("doctor", agent.Config{})
	if status, _, body := doc.do("POST", "/fhir/Patient", patientWithMRN("1", "X"), true); status != http.StatusForbidden {
		t.Fatalf("an agent without custody registering a patient: %d %s", status, body)
	}

	doc, _, docStore := w.custodialFacade("doctor", agent.Config{Patients: map[string]tx.Address{"example": w.keys["patient"].Address()}})
	var ids []string
	for i := range custody.MaxIdentifiers + 1 {
		ids = append(ids, `{"value":"mrn-`+string(rune('a'+i))+`"}`)
	}
	tooMany := []byte(`{"resourceType":"Patient","identifier":[` + strings.Join(ids, ",") + `]}`)
	oversized := []byte(`{"resourceType":"Patient","identifier":[{"value":"` + strings.Repeat("9", custody.MaxValueBytes+1) + `"}]}`)
	for name, body := range map[string][]byte{"too many identifiers": tooMany, "an oversized identifier": oversized} {
		if status, _, out := doc.do("POST", "/fhir/Patient", body, true); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, status, out)
		}
	}
	if status, _, body := doc.do("PUT", "/fhir/Patient/has%2Fslash", []byte(`{"resourceType":"Patient"}`), true); status != http.StatusBadRequest && status != http.StatusNotFound {
		t.Errorf("PUT-create under a malformed id: %d %s", status, body)
	}
	if n := len(docStore.Patients()); n != 0 {
		t.Fatalf("%d patients kept after refused registrations", n)
	}
	// An If-Match on an id the agent does not serve creates nothing.
	if status, _, _ := doc.doWith("PUT", "/fhir/Patient/nobody", []byte(`{"resourceType":"Patient","id":"nobody"}`), map[string]string{"If-Match": `W/"1"`}); status != http.StatusNotFound {
		t.Fatalf("PUT with If-Match on an unknown patient: %d", status)
	}
	// The demo patient "example" is served already: PUT adds its demographics, it registers
	// no second account.
	if status, _, body := doc.do("PUT", "/fhir/Patient/example", []byte(`{"resourceType":"Patient","id":"example"}`), true); status == http.StatusCreated && len(docStore.Patients()) != 0 {
		t.Fatalf("PUT Patient/example registered a patient: %s", body)
	}
}
