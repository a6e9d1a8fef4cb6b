package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/fhir"
)

// Provenance: every record version the ledger holds has a FHIR Provenance, made from its anchor
// (no record of its own): the target version, when the ledger recorded it, who wrote it (the
// author's account, with its public name for a practitioner or organization), the purpose of use,
// the anchoring transaction, and the author's Ed25519 signature of records.ProvenanceStatement
// (which binds the chain, record, version, patient, content commitment, ciphertext hash and
// purpose). GET /fhir/Provenance/{record}.{version} reads one; GET /fhir/Provenance?target=
// Type/id[/_history/v] searches a record's. Whoever the node shows the anchor to (the account may
// read the record) gets them; nothing is decrypted.

// Provenance signature coding (ASTM E1762-95: author's signature) and format.
const (
	sigAuthorSystem = "urn:iso-astm:E1762-95:2013"
	sigAuthorCode   = "1.2.840.10065.1.12.1.1"
	sigFormat       = "application/vnd.medchain.provenance-v1+ed25519"
	systemTx        = "urn:medchain:tx"
)

// ProvenanceResource is the FHIR Provenance of a record version of resourceType, served under id
// (the target's served id); authorName is the author's public name, if any.
func ProvenanceResource(rec *records.Record, resourceType, id, authorName string) ([]byte, error) {
	type signature struct {
		Type      []coding  `json:"type"`
		When      string    `json:"when"`
		Who       reference `json:"who"`
		SigFormat string    `json:"sigFormat,omitempty"`
		Data      []byte    `json:"data,omitempty"`
	}
	type agentEntry struct {
		Type concept   `json:"type"`
		Who  reference `json:"who"`
	}
	type entity struct {
		Role string    `json:"role"`
		What reference `json:"what"`
	}
	version := strconv.FormatUint(uint64(rec.Version), 10)
	activity := coding{System: "http://terminology.hl7.org/CodeSystem/v3-DataOperation", Code: "CREATE", Display: "create"}
	if rec.Version > 1 {
		activity = coding{System: activity.System, Code: "UPDATE", Display: "revise"}
	}
	who := accountRef(rec.Author)
	who.Display = authorName
	p := struct {
		ResourceType string       `json:"resourceType"`
		ID           string       `json:"id"`
		Target       []reference  `json:"target"`
		Recorded     string       `json:"recorded"`
		Reason       []concept    `json:"reason,omitempty"`
		Activity     concept      `json:"activity"`
		Agent        []agentEntry `json:"agent"`
		Entity       []entity     `json:"entity,omitempty"`
		Signature    []signature  `json:"signature,omitempty"`
	}{ResourceType: "Provenance", ID: rec.ID + "." + version,
		Target:   []reference{{Reference: resourceType + "/" + id + "/_history/" + version}},
		Recorded: instant(rec.CreatedAt), Activity: concept{Coding: []coding{activity}},
		Agent: []agentEntry{{Type: concept{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/provenance-participant-type", Code: "author", Display: "Author"}}},
			Who: who}}}
	if rec.Purpose != "" {
		p.Reason = []concept{{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ActReason", Code: rec.Purpose}}}}
	}
	if rec.TxHash != "" {
		p.Entity = []entity{{Role: "source", What: reference{Identifier: &identifier{System: systemTx, Value: rec.TxHash}}}}
	}
	if len(rec.Signature) > 0 {
		p.Signature = []signature{{Type: []coding{{System: sigAuthorSystem, Code: sigAuthorCode, Display: "Author's Signature"}},
			When: instant(rec.CreatedAt), Who: accountRef(rec.Author), SigFormat: sigFormat, Data: rec.Signature}}
	}
	return json.Marshal(p)
}

// provenanceOf renders the Provenance of rec's version as resourceType under served id.
func (f *Facade) provenanceOf(ctx context.Context, rec *records.Record, resourceType, served string) ([]byte, error) {
	name := ""
	if acc, _, err := f.agent.node.Account(ctx, rec.Author, false); err == nil {
		name = acc.Name
	}
	return ProvenanceResource(rec, resourceType, served, name)
}

// provenanceTarget reads the versions of record id of resourceType the request may read (its
// Provenances' targets): ErrNotFound when the node does not show it, it is of another type, or
// the grant does not reach it.
func (f *Facade) provenanceTarget(ctx context.Context, resourceType, id string) ([]records.Record, error) {
	latest, err := f.agent.node.Record(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
	if !f.agent.isType(ctx, latest, resourceType) || !f.permits(ctx, 'r', latest) {
		return nil, ErrNotFound
	}
	history, err := f.agent.node.History(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
	return history, nil
}

// readProvenance answers GET /fhir/Provenance/{record}.{version}.
func (f *Facade) readProvenance(w http.ResponseWriter, r *http.Request) {
	id, v, ok := strings.Cut(r.PathValue("id"), ".")
	version, err := strconv.ParseUint(v, 10, 32)
	if !ok || err != nil {
		f.fail(w, ErrNotFound)
		return
	}
	latest, err := f.agent.node.Record(r.Context(), id)
	if err != nil {
		f.fail(w, notFound(err))
		return
	}
	typ := f.agent.ResourceTypeName(r.Context(), latest.Patient, latest.ResourceType)
	history, err := f.provenanceTarget(r.Context(), typ, id)
	if err != nil {
		f.fail(w, err)
		return
	}
	for i := range history {
		if uint64(history[i].Version) == version {
			out, err := f.provenanceOf(r.Context(), &history[i], typ, id)
			if err != nil {
				f.fail(w, err)
				return
			}
			writeFHIR(w, http.StatusOK, out)
			return
		}
	}
	f.fail(w, ErrNotFound)
}

// searchProvenance answers GET /fhir/Provenance?target=Type/id[/_history/v]: the Provenances of
// the target's versions (of the one version named), newest first.
func (f *Facade) searchProvenance(w http.ResponseWriter, r *http.Request) {
	applied, ok := f.onlyParams(w, r, "target")
	if !ok {
		return
	}
	target := r.URL.Query().Get("target")
	ref, vid, _ := strings.Cut(target, "/_history/")
	typ, id, ok := strings.Cut(ref, "/")
	if !ok || !fhir.ValidID(id) {
		f.fail(w, &fhir.InvalidError{Msg: "a Provenance search names its target: target=Type/id[/_history/version]"})
		return
	}
	recordID, err := f.patientRecord(r.Context(), typ, id)
	if err != nil {
		f.searchBundle(w, r, nil, nil, "", "", applied)
		return
	}
	history, err := f.provenanceTarget(r.Context(), typ, recordID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		f.fail(w, err)
		return
	}
	var rs [][]byte
	for i := len(history) - 1; i >= 0; i-- {
		if vid != "" && strconv.FormatUint(uint64(history[i].Version), 10) != vid {
			continue
		}
		out, err := f.provenanceOf(r.Context(), &history[i], typ, id)
		if err != nil {
			f.fail(w, err)
			return
		}
		rs = append(rs, out)
	}
	f.searchBundle(w, r, rs, nil, "", "", applied)
}
