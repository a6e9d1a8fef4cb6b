package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/tx"
)

// FHIROptions control the FHIR facade benchmark.
type FHIROptions struct {
	Observations int // Observations of the search patient
	Everything   int // records of the $everything patient, spread over 8 categories
	Dir          string
}

// FHIRResult holds the FHIR facade benchmark's figures. "Grantee" is the hospital's agent,
// which reads by the patients' grants (every record's key released by the network's holders);
// "author" is the doctor's agent, which wrote the records and unwraps their keys itself.
type FHIRResult struct {
	Observations, Everything int
	LoadPerS                 float64 // resources/s written by transaction Bundles of 50

	Pages                            int           // pages of 50 in a walk of the search
	SearchColdFirst                  time.Duration // the grantee's first page: its access request commits first
	SearchP50, SearchP99             time.Duration // the grantee's pages of 50, in its session
	AuthorSearchP50, AuthorSearchP99 time.Duration // the author's pages of 50
	CodeSearchP50, CodeSearchP99     time.Duration // the grantee's first pages of a search by code (1 in 10 match)

	EverythingCold, EverythingWarm time.Duration // the grantee's $everything, every page
	ExportCold, ExportWarm         time.Duration // the grantee's Patient/$export, kick-off to manifest
	Exported                       int
}

func (r FHIRResult) String() string {
	rate := func(n int, d time.Duration) float64 { return float64(n) / max(d.Seconds(), 1e-9) }
	return fmt.Sprintf("load: %d Observations + %d records in transaction Bundles of 50: %.0f resources/s\n"+
		"search Observation?patient=&_count=50, %d pages: grantee first page (access request) %v; grantee in session p50 %v, p99 %v; author p50 %v, p99 %v\n"+
		"search by code (1 in 10 match), first page of 50, grantee: p50 %v, p99 %v\n"+
		"$everything, %d records in 8 categories, every page, grantee: cold %v, in session %v\n"+
		"Patient/$export, %d resources, grantee: cold %v (%.0f/s), in session %v (%.0f/s)",
		r.Observations, r.Everything, r.LoadPerS,
		r.Pages, ms(r.SearchColdFirst), ms(r.SearchP50), ms(r.SearchP99), ms(r.AuthorSearchP50), ms(r.AuthorSearchP99),
		ms(r.CodeSearchP50), ms(r.CodeSearchP99),
		r.Everything, ms(r.EverythingCold), ms(r.EverythingWarm),
		r.Exported, ms(r.ExportCold), rate(r.Exported, r.ExportCold), ms(r.ExportWarm), rate(r.Exported, r.ExportWarm))
}

func ms(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }

// observationCodes are the LOINC codes the benchmark's Observations cycle through.
var observationCodes = []string{"8867-4", "8480-6", "8462-4", "8310-5", "9279-1", "2708-6", "29463-7", "8302-2", "39156-5", "2339-0"}

// FHIR starts a dev node, registers two patients who grant the doctor (write) and the hospital
// (read) every category, has the doctor's facade write o.Observations Observations for the
// first and o.Everything records in 8 categories for the second, then times searches,
// $everything and $export through the hospital's facade (and the search through the doctor's).
func FHIR(ctx context.Context, o FHIROptions) (FHIRResult, error) {
	res := FHIRResult{Observations: o.Observations, Everything: o.Everything}
	n, kr, err := startDevNode(filepath.Join(o.Dir, "fhir"))
	if err != nil {
		return res, err
	}
	defer n.Stop()
	c := client.New(n.APIAddr)
	if err := c.WaitReady(ctx); err != nil {
		return res, err
	}
	signers := map[string]*client.Signer{}
	for _, name := range []string{"doctor", "hospital"} {
		k, err := kr.Get(name, "")
		if err != nil {
			return res, err
		}
		if signers[name], err = client.NewSigner(ctx, c, k); err != nil {
			return res, err
		}
	}
	patients := map[string]tx.Address{}
	for _, id := range []string{"search", "everything"} {
		addr, err := benchPatient(ctx, c, signers["doctor"].Address(), signers["hospital"].Address())
		if err != nil {
			return res, fmt.Errorf("patient %s: %w", id, err)
		}
		patients[id] = addr
	}
	trust, err := client.NewTrust(n.Home, n.APIAddr, n.ChainID)
	if err != nil {
		return res, err
	}
	defer trust.Close()
	cfg := agent.Config{Patients: patients, Purpose: "TREAT", Trust: trust}
	doctor := httptest.NewServer(agent.NewFacade(agent.New(signers["doctor"], cfg), benchToken, nil))
	defer doctor.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 5 * time.Minute}
	fc := &fhirClient{ctx: ctx, hc: hc}

	// Load: transaction Bundles of 50, 4 in flight.
	var bundles [][]byte
	for i := 0; i < o.Observations; i += 50 {
		var entries [][]byte
		for j := i; j < min(i+50, o.Observations); j++ {
			entries = append(entries, benchObservation("search", j))
		}
		bundles = append(bundles, transactionBundle(entries))
	}
	for i := 0; i < o.Everything; i += 50 {
		var entries [][]byte
		for j := i; j < min(i+50, o.Everything); j++ {
			entries = append(entries, benchRecord("everything", j))
		}
		bundles = append(bundles, transactionBundle(entries))
	}
	start := time.Now()
	if err := forEach(len(bundles), 4, func(i int) error {
		_, err := fc.do(http.MethodPost, doctor.URL+"/fhir", bundles[i], http.StatusOK)
		return err
	}); err != nil {
		return res, fmt.Errorf("load: %w", err)
	}
	res.LoadPerS = float64(o.Observations+o.Everything) / time.Since(start).Seconds()

	// A fresh hospital agent per cold figure: no access sessions yet.
	hospital := func() *httptest.Server {
		return httptest.NewServer(agent.NewFacade(agent.New(signers["hospital"], cfg), benchToken, nil))
	}
	h := hospital()
	defer h.Close()
	search := "/fhir/Observation?patient=search&_count=50"
	if res.SearchColdFirst, err = fc.timed(h.URL + search); err != nil {
		return res, err
	}
	if _, res.Pages, err = fc.walk(h.URL+search, o.Observations); err != nil { // sessions for every page
		return res, err
	}
	pages, _, err := fc.walk(h.URL+search, o.Observations)
	if err != nil {
		return res, err
	}
	res.SearchP50, res.SearchP99 = percentile(pages, 50), percentile(pages, 99)
	if pages, _, err = fc.walk(doctor.URL+search, o.Observations); err != nil {
		return res, err
	}
	res.AuthorSearchP50, res.AuthorSearchP99 = percentile(pages, 50), percentile(pages, 99)
	var byCode []time.Duration
	for round := 0; round < 2; round++ {
		for _, code := range observationCodes {
			d, err := fc.timed(h.URL + search + "&code=" + url.QueryEscape("http://loinc.org|"+code))
			if err != nil {
				return res, err
			}
			byCode = append(byCode, d)
		}
	}
	res.CodeSearchP50, res.CodeSearchP99 = percentile(byCode, 50), percentile(byCode, 99)

	everything := "/fhir/Patient/everything/$everything"
	h2 := hospital()
	defer h2.Close()
	for i, d := range []*time.Duration{&res.EverythingCold, &res.EverythingWarm} {
		t0 := time.Now()
		if _, _, err := fc.walk(h2.URL+everything, o.Everything); err != nil {
			return res, fmt.Errorf("$everything (run %d): %w", i+1, err)
		}
		*d = time.Since(t0)
	}

	h3 := hospital()
	defer h3.Close()
	for i, d := range []*time.Duration{&res.ExportCold, &res.ExportWarm} {
		t0 := time.Now()
		count, err := fc.export(h3.URL)
		if err != nil {
			return res, fmt.Errorf("$export (run %d): %w", i+1, err)
		}
		*d, res.Exported = time.Since(t0), count
	}
	if res.Exported != o.Observations+o.Everything {
		return res, fmt.Errorf("$export: %d resources, want %d", res.Exported, o.Observations+o.Everything)
	}
	return res, nil
}

// benchPatient registers a new patient account, draws its tag key and grants the doctor read
// and write, and the hospital read, of every category.
func benchPatient(ctx context.Context, c *client.Client, doctor, hospital tx.Address) (tx.Address, error) {
	k, err := keyring.Generate("patient")
	if err != nil {
		return "", err
	}
	s, err := client.NewSigner(ctx, c, k)
	if err != nil {
		return "", err
	}
	if _, err := s.Send(ctx, identity.TypeRegister, identity.Register{Role: identity.RolePatient, EncryptionKey: k.Encryption.PublicKey().Bytes()}); err != nil {
		return "", err
	}
	a := agent.New(s, agent.Config{Purpose: "TREAT"})
	if _, err := a.EnsureTagKey(ctx, k.Address); err != nil {
		return "", err
	}
	for _, g := range []consent.GrantMsg{
		{Grantee: doctor, Write: true},
		{Grantee: hospital},
	} {
		g.Categories, g.Purposes, g.Expiry = []string{consent.AllCategories}, []string{"TREAT"}, time.Now().Add(24*time.Hour).UTC().Truncate(time.Second)
		if _, err := a.Grant(ctx, g); err != nil {
			return "", err
		}
	}
	return k.Address, nil
}

// benchObservation is the i-th Observation of patient: vital signs or laboratory, a code of
// observationCodes, one day apart.
func benchObservation(patient string, i int) []byte {
	cat := "vital-signs"
	if i%2 == 1 {
		cat = "laboratory"
	}
	day := time.Date(2020, 1, 1, 9, 30, 0, 0, time.UTC).AddDate(0, 0, i)
	return fmt.Appendf(nil, `{"resourceType":"Observation","status":"final",`+
		`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":%q}]}],`+
		`"code":{"coding":[{"system":"http://loinc.org","code":%q}]},"subject":{"reference":"Patient/%s"},`+
		`"effectiveDateTime":%q,"valueQuantity":{"value":%d,"unit":"1","system":"http://unitsofmeasure.org","code":"1"}}`,
		cat, observationCodes[i%len(observationCodes)], patient, day.Format(time.RFC3339), 50+i%100)
}

// benchRecord is the i-th record of patient in one of 8 categories.
func benchRecord(patient string, i int) []byte {
	subject := fmt.Sprintf(`{"reference":"Patient/%s"}`, patient)
	date := time.Date(2021, 1, 1, 8, 0, 0, 0, time.UTC).AddDate(0, 0, i).Format(time.RFC3339)
	snomed := func(code string) string {
		return fmt.Sprintf(`{"coding":[{"system":"http://snomed.info/sct","code":%q}]}`, code)
	}
	switch i % 8 {
	case 0, 1:
		return benchObservation(patient, i)
	case 2:
		return fmt.Appendf(nil, `{"resourceType":"Condition","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},"code":%s,"subject":%s,"onsetDateTime":%q}`, snomed("38341003"), subject, date)
	case 3:
		return fmt.Appendf(nil, `{"resourceType":"MedicationStatement","status":"active","medicationCodeableConcept":%s,"subject":%s,"effectiveDateTime":%q}`, snomed("387458008"), subject, date)
	case 4:
		return fmt.Appendf(nil, `{"resourceType":"AllergyIntolerance","code":%s,"patient":%s,"recordedDate":%q}`, snomed("91936005"), subject, date)
	case 5:
		return fmt.Appendf(nil, `{"resourceType":"Immunization","status":"completed","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"140"}]},"patient":%s,"occurrenceDateTime":%q}`, subject, date)
	case 6:
		return fmt.Appendf(nil, `{"resourceType":"Procedure","status":"completed","code":%s,"subject":%s,"performedDateTime":%q}`, snomed("80146002"), subject, date)
	default:
		return fmt.Appendf(nil, `{"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":%s,"period":{"start":%q}}`, subject, date)
	}
}

// transactionBundle wraps resources in a transaction Bundle that creates each.
func transactionBundle(resources [][]byte) []byte {
	type request struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	}
	type entry struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Request  request         `json:"request"`
	}
	b := struct {
		ResourceType string  `json:"resourceType"`
		Type         string  `json:"type"`
		Entry        []entry `json:"entry"`
	}{ResourceType: "Bundle", Type: "transaction"}
	for i, r := range resources {
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		json.Unmarshal(r, &head)
		b.Entry = append(b.Entry, entry{FullURL: fmt.Sprintf("urn:uuid:00000000-0000-4000-8000-%012d", i), Resource: r, Request: request{"POST", head.ResourceType}})
	}
	out, _ := json.Marshal(b)
	return out
}

// forEach calls do(0..n-1) with at most inflight at once and returns the first error.
func forEach(n, inflight int, do func(int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		slots = make(chan struct{}, inflight)
	)
	for i := range n {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if err := do(i); err != nil {
				mu.Lock()
				first = cmpOr(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// fhirClient sends the benchmark's requests with the development token.
type fhirClient struct {
	ctx context.Context
	hc  *http.Client
}

// do sends a request and returns the body of an answer with status want.
func (c *fhirClient) do(method, u string, body []byte, want int) ([]byte, error) {
	req, err := http.NewRequestWithContext(c.ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+benchToken)
	req.Header.Set("Accept", "application/fhir+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	if strings.HasSuffix(req.URL.Path, "$export") {
		req.Header.Set("Prefer", "respond-async")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: HTTP %d: %.300s", method, u, resp.StatusCode, out)
	}
	if method == http.MethodGet && want == http.StatusAccepted {
		return []byte(resp.Header.Get("Content-Location")), nil
	}
	return out, nil
}

// timed is the time of one search page.
func (c *fhirClient) timed(u string) (time.Duration, error) {
	t0 := time.Now()
	_, err := c.do(http.MethodGet, u, nil, http.StatusOK)
	return time.Since(t0), err
}

// walk follows a search's next links from u to the end, and checks it met want matches.
func (c *fhirClient) walk(u string, want int) (pages []time.Duration, n int, err error) {
	matches := 0
	for u != "" {
		t0 := time.Now()
		body, err := c.do(http.MethodGet, u, nil, http.StatusOK)
		if err != nil {
			return nil, 0, err
		}
		pages = append(pages, time.Since(t0))
		var b struct {
			Link []struct {
				Relation, URL string
			}
			Entry []struct {
				Search struct{ Mode string }
			}
		}
		if err := json.Unmarshal(body, &b); err != nil {
			return nil, 0, err
		}
		for _, e := range b.Entry {
			if e.Search.Mode == "match" {
				matches++
			}
		}
		u = ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				u = l.URL
			}
		}
	}
	if matches != want {
		return nil, 0, fmt.Errorf("%d matches across %d pages, want %d", matches, len(pages), want)
	}
	return pages, len(pages), nil
}

// export runs a Patient/$export on the facade at base to its manifest and returns the
// resources it holds.
func (c *fhirClient) export(base string) (int, error) {
	status, err := c.do(http.MethodGet, base+"/fhir/Patient/$export", nil, http.StatusAccepted)
	if err != nil {
		return 0, err
	}
	for {
		req, _ := http.NewRequestWithContext(c.ctx, http.MethodGet, string(status), nil)
		req.Header.Set("Authorization", "Bearer "+benchToken)
		resp, err := c.hc.Do(req)
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		switch resp.StatusCode {
		case http.StatusAccepted:
			time.Sleep(20 * time.Millisecond)
			continue
		case http.StatusOK:
		default:
			return 0, fmt.Errorf("export status: HTTP %d: %.300s", resp.StatusCode, body)
		}
		var m struct {
			Output []struct {
				Count int
			}
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return 0, err
		}
		total := 0
		for _, o := range m.Output {
			total += o.Count
		}
		return total, nil
	}
}
