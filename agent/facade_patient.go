package agent

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/medchain/medchain/custody"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// The Patient endpoints serve the agent's directory of patients: Patient/{id} is a patient the
// agent knows by FHIR id (registered here, or configured), read as its demographics record (the
// patient's first Patient record). POST /Patient registers a new patient (RegisterPatient); PUT
// /Patient/{id} updates a known patient's demographics, or registers a patient under a new id
// (FHIR's update as create); GET /Patient searches the directory by _id and identifier (MRNs
// live in the agent only).

// DirectoryEntry is a patient of the agent's directory.
type DirectoryEntry struct {
	FHIRID      string
	Address     tx.Address
	Identifiers []custody.Identifier
}

// Directory returns the patients the agent knows by FHIR id, by id: those registered here with
// their identifiers, and those configured (Config.Patients, SetPatient).
func (a *Agent) Directory() []DirectoryEntry {
	registered := map[string]custody.Patient{}
	for _, p := range a.RegisteredPatients() {
		registered[p.FHIRID] = p
	}
	a.mu.RLock()
	out := make([]DirectoryEntry, 0, len(a.cfg.Patients))
	for id, acct := range a.cfg.Patients {
		out = append(out, DirectoryEntry{FHIRID: id, Address: acct, Identifiers: registered[id].Identifiers})
	}
	a.mu.RUnlock()
	slices.SortFunc(out, func(x, y DirectoryEntry) int { return strings.Compare(x.FHIRID, y.FHIRID) })
	return out
}

// Demographics reads a patient's demographics record: the first Patient record of the patient
// this account may read (ErrNotFound if none).
func (a *Agent) Demographics(ctx context.Context, patient tx.Address) (*Plain, error) {
	found, _, err := a.SearchPage(ctx, patient, "Patient", "", 1, nil)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, ErrNotFound
	}
	return &found[0], nil
}

// createPatient registers a new patient (the resource's id, if any, is ignored, as FHIR create
// does); with If-None-Exist (by identifier or _id) a patient of the directory that matches is
// answered instead.
func (f *Facade) createPatient(w http.ResponseWriter, r *http.Request) {
	var exists func(*fhir.Resource) (*Plain, string, error)
	if cond := r.Header.Get("If-None-Exist"); cond != "" {
		exists = func(*fhir.Resource) (*Plain, string, error) { return f.existingPatient(r.Context(), cond) }
	}
	f.storeAs(w, r, exists, func(res *fhir.Resource) (*Stored, error) { return f.agent.RegisterPatient(r.Context(), res, "") })
}

// existingPatient runs a conditional create's search over the directory.
func (f *Facade) existingPatient(ctx context.Context, cond string) (*Plain, string, error) {
	params, err := url.ParseQuery(strings.TrimPrefix(cond, "?"))
	if err != nil {
		return nil, "", &fhir.InvalidError{Msg: "If-None-Exist: " + err.Error()}
	}
	matches, err := matchPatients(f.agent.Directory(), params, false)
	if err != nil {
		return nil, "", err
	}
	matches = slices.DeleteFunc(matches, func(e DirectoryEntry) bool { // what the caller may not read does not exist for it
		if !f.patientAllowed(ctx, e.FHIRID, "Patient", 'r') {
			return true
		}
		if grantOf(ctx) == nil {
			return false
		}
		p, err := f.agent.Demographics(ctx, e.Address)
		return err != nil || !f.permits(ctx, 'r', p.Record)
	})
	if len(matches) == 0 && len(params) == 0 {
		return nil, "", &fhir.InvalidError{Msg: "If-None-Exist names no search criteria"}
	}
	switch len(matches) {
	case 0:
		return nil, "", nil
	case 1:
		p, err := f.agent.Demographics(ctx, matches[0].Address)
		return p, matches[0].FHIRID, err
	}
	return nil, "", errManyMatches
}

// updatePatient updates the demographics of a patient of the directory (adding the first record
// if it has none), or registers a new patient under the URL's id.
func (f *Facade) updatePatient(w http.ResponseWriter, r *http.Request) {
	fhirID := r.PathValue("id")
	ifVersion, ok := ifMatch(w, r)
	if !ok {
		return
	}
	f.storeAs(w, r, nil, func(res *fhir.Resource) (*Stored, error) {
		if res.ID != "" && res.ID != fhirID {
			return nil, &fhir.InvalidError{Msg: "the resource's id " + res.ID + " is not the id in the URL, " + fhirID}
		}
		res.Patient = fhirID
		acct, err := f.agent.PatientAccount(fhirID)
		if err != nil {
			if ifVersion != 0 {
				return nil, ErrNotFound
			}
			return f.agent.RegisterPatient(r.Context(), res, fhirID)
		}
		current, err := f.agent.Demographics(r.Context(), acct)
		var s *Stored
		switch {
		case err == nil:
			s, err = f.agent.UpdateResourceIf(r.Context(), current.Record.ID, res, ifVersion)
		case errors.Is(err, ErrNotFound) && ifVersion == 0:
			s, err = f.agent.addAs(r.Context(), res, acct, newID())
		}
		if err != nil {
			return nil, err
		}
		// A patient's app does not change the identifiers the organization finds patients by.
		if g := grantOf(r.Context()); g == nil || g.Patient == "" {
			if err := f.agent.updateIdentifiers(acct, res); err != nil {
				f.log.Warn("a patient's identifiers were not updated in the custody store", "err", err)
			}
		}
		s.FHIRID = fhirID
		return s, nil
	})
}

// ifMatch reads an If-Match header's version (0 without one); it answers 400 for a malformed one.
func ifMatch(w http.ResponseWriter, r *http.Request) (uint32, bool) {
	v := r.Header.Get("If-Match")
	if v == "" {
		return 0, true
	}
	n, ok := etagVersion(v)
	if !ok {
		writeOutcome(w, http.StatusBadRequest, "invalid", `If-Match must be a version's ETag, W/"<versionId>"`)
	}
	return n, ok
}

// patientParams are the search parameters of Patient.
var patientParams = map[string]string{"_id": "token", "identifier": "token"}

// matchPatients picks the directory entries a Patient search's parameters (_id, identifier; each
// may repeat, and hold alternatives separated by commas) match. Other parameters are refused,
// or ignored when lenient.
func matchPatients(dir []DirectoryEntry, params url.Values, lenient bool) ([]DirectoryEntry, error) {
	for k := range params {
		if _, ok := patientParams[k]; !ok && !slices.Contains([]string{"_count", CursorParam, "_format", "_summary", "_include", "_revinclude"}, k) && !lenient {
			return nil, &fhir.InvalidError{Msg: "search parameter " + strconv.Quote(k) + " is not supported for Patient; supported: _id, identifier, _count, _revinclude" +
				" (or send Prefer: handling=lenient to have unsupported ones ignored)"}
		}
	}
	var out []DirectoryEntry
	for _, e := range dir {
		ok := true
		for _, v := range params["_id"] {
			ok = ok && slices.Contains(strings.Split(v, ","), e.FHIRID)
		}
		for _, v := range params["identifier"] {
			ok = ok && slices.ContainsFunc(strings.Split(v, ","), func(token string) bool {
				p := custody.Patient{Identifiers: e.Identifiers}
				return p.Matches(token)
			})
		}
		if ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// searchPatients answers a Patient search over the directory, one page of the matches'
// demographics (a patient whose demographics this account may not read is left out, as absent).
// The cursor is the FHIR id the page starts after.
func (f *Facade) searchPatients(w http.ResponseWriter, r *http.Request) {
	cursor, count, ok := page(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	matches, err := matchPatients(f.agent.Directory(), q, lenient(r))
	if err != nil {
		f.fail(w, err)
		return
	}
	_, rev, err := fhir.ParseIncludes("Patient", q["_include"], q["_revinclude"])
	if err != nil {
		f.fail(w, err)
		return
	}
	applied := url.Values{}
	for _, k := range []string{"_id", "identifier", "_include", "_revinclude"} {
		if v, ok := q[k]; ok {
			applied[k] = v
		}
	}
	if summary := q.Get("_summary"); summary == "count" {
		applied.Set("_summary", "count")
		visible := 0
		for _, m := range matches { // only what the caller could find by searching
			if !f.patientAllowed(r.Context(), m.FHIRID, "Patient", 's') {
				continue
			}
			if grantOf(r.Context()) != nil {
				if p, err := f.agent.Demographics(r.Context(), m.Address); err != nil || !f.permits(r.Context(), 's', p.Record) {
					continue
				}
			}
			visible++
		}
		out, err := CountBundle(visible, []BundleLink{{Relation: "self", URL: f.searchLink(r, applied, "")}})
		if err != nil {
			f.fail(w, err)
			return
		}
		writeFHIR(w, http.StatusOK, out)
		return
	}
	start, _ := slices.BinarySearchFunc(matches, cursor, func(e DirectoryEntry, id string) int { return strings.Compare(e.FHIRID, id) })
	if cursor != "" && start < len(matches) && matches[start].FHIRID == cursor {
		start++
	}
	var rs, included [][]byte
	next := ""
	for i := start; i < len(matches); i++ {
		if len(rs) == count {
			next = matches[i-1].FHIRID
			break
		}
		if !f.patientAllowed(r.Context(), matches[i].FHIRID, "Patient", 's') {
			continue
		}
		p, err := f.agent.Demographics(r.Context(), matches[i].Address)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			f.fail(w, err)
			return
		}
		if !f.permits(r.Context(), 's', p.Record) {
			continue
		}
		out, err := servedView(p, matches[i].FHIRID)
		if err != nil {
			f.fail(w, err)
			return
		}
		rs = append(rs, out)
		more, err := f.includes(r.Context(), matches[i].Address, "Patient", []served{{matches[i].FHIRID, p}}, nil, rev)
		if err != nil {
			f.fail(w, err)
			return
		}
		included = append(included, more[:min(len(more), MaxIncluded-len(included))]...)
	}
	f.searchBundle(w, r, rs, included, cursor, next, applied)
}

// servedView renders a decrypted record as served under id (a directory Patient's FHIR id).
func servedView(p *Plain, id string) ([]byte, error) {
	return fhir.WithServerFields(p.JSON, id, strconv.FormatUint(uint64(p.Record.Version), 10), instant(p.Record.CreatedAt))
}

// patientRecord resolves the id of a Patient URL: for a patient of the directory, the record id
// of its demographics (ErrNotFound if it has none this account may read); other ids are record
// ids already.
func (f *Facade) patientRecord(ctx context.Context, typ, id string) (string, error) {
	if typ != "Patient" {
		return id, nil
	}
	acct, err := f.agent.PatientAccount(id)
	if err != nil {
		return id, nil
	}
	if !f.patientAllowed(ctx, id, "Patient", 'r') {
		return "", ErrNotFound
	}
	p, err := f.agent.Demographics(ctx, acct)
	if err != nil {
		return "", err
	}
	return p.Record.ID, nil
}
