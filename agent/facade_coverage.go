package agent

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// Coverage proofs through the FHIR facade, as operations on Coverage with Parameters in and out:
//
//	POST /fhir/Coverage/$coverage-challenge   (a verifier: insurer, plan*, date) -> challenge
//	POST /fhir/Coverage/{id}/$prove-coverage  (the patient's agent: challenge) -> proof
//	POST /fhir/Coverage/$verify-coverage      (the verifier: proof, record?) -> covered, ...
//
// The challenge and the proof travel as base64 JSON (coverage.Challenge, insurance.Verify).

// parameter is one entry of a FHIR Parameters resource.
type parameter struct {
	Name              string `json:"name"`
	ValueString       string `json:"valueString,omitempty"`
	ValueDate         string `json:"valueDate,omitempty"`
	ValueInstant      string `json:"valueInstant,omitempty"`
	ValueBase64Binary string `json:"valueBase64Binary,omitempty"`
	ValueBoolean      *bool  `json:"valueBoolean,omitempty"`
}

type parameters struct {
	ResourceType string      `json:"resourceType"`
	Parameter    []parameter `json:"parameter"`
}

// readParameters reads a request's validated FHIR Parameters.
func (f *Facade) readParameters(w http.ResponseWriter, r *http.Request) (*parameters, bool) {
	body, release, ok := f.readBody(w, r)
	if !ok {
		return nil, false
	}
	defer release()
	res, err := fhir.Parse(body)
	if err == nil && res.Type != "Parameters" {
		err = &fhir.InvalidError{Msg: "the operation takes a Parameters resource, not a " + res.Type}
	}
	var p parameters
	if err == nil {
		err = json.Unmarshal(body, &p)
	}
	if err != nil {
		f.fail(w, err)
		return nil, false
	}
	return &p, true
}

func (p *parameters) all(name string) []parameter {
	var out []parameter
	for _, q := range p.Parameter {
		if q.Name == name {
			out = append(out, q)
		}
	}
	return out
}

func (p *parameters) one(name string) (parameter, bool) {
	all := p.all(name)
	if len(all) != 1 {
		return parameter{}, false
	}
	return all[0], true
}

// base64JSON decodes a valueBase64Binary parameter's JSON into v.
func (p *parameters) base64JSON(name string, v any) error {
	q, ok := p.one(name)
	if !ok {
		return &fhir.InvalidError{Msg: "exactly one parameter " + name + " (valueBase64Binary) is required"}
	}
	raw, err := base64.StdEncoding.DecodeString(q.ValueBase64Binary)
	if err == nil {
		err = json.Unmarshal(raw, v)
	}
	if err != nil {
		return &fhir.InvalidError{Msg: "parameter " + name + ": " + err.Error()}
	}
	return nil
}

func answerParameters(w http.ResponseWriter, ps ...parameter) {
	raw, _ := json.Marshal(parameters{ResourceType: "Parameters", Parameter: ps})
	writeFHIR(w, http.StatusOK, raw)
}

func base64Param(name string, v any) parameter {
	raw, _ := json.Marshal(v)
	return parameter{Name: name, ValueBase64Binary: base64.StdEncoding.EncodeToString(raw)}
}

func (f *Facade) coverageChallenge(w http.ResponseWriter, r *http.Request) {
	p, ok := f.readParameters(w, r)
	if !ok {
		return
	}
	ins, _ := p.one("insurer")
	var plans []string
	for _, q := range p.all("plan") {
		plans = append(plans, q.ValueString)
	}
	day := coverage.Day(time.Now())
	if d, ok := p.one("date"); ok {
		t, err := time.Parse(time.DateOnly, d.ValueDate)
		if err != nil {
			f.fail(w, &fhir.InvalidError{Msg: "date: want YYYY-MM-DD"})
			return
		}
		day = coverage.Day(t)
	}
	ch, err := f.agent.Challenge(tx.Address(ins.ValueString), plans, day)
	if err != nil {
		f.fail(w, err)
		return
	}
	answerParameters(w, base64Param("challenge", ch))
}

func (f *Facade) proveCoverage(w http.ResponseWriter, r *http.Request) {
	p, ok := f.readParameters(w, r)
	if !ok {
		return
	}
	var ch coverage.Challenge
	if err := p.base64JSON("challenge", &ch); err != nil {
		f.fail(w, err)
		return
	}
	id := r.PathValue("id")
	if !f.mayRead(r.Context(), id) {
		f.fail(w, ErrNotFound)
		return
	}
	rec, err := f.agent.ReadVersion(r.Context(), id, 0)
	if err == nil && (!f.agent.isType(r.Context(), rec.Record, "Coverage") || !f.permits(r.Context(), 'r', rec.Record)) {
		err = ErrNotFound
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	held, err := heldIn(rec.JSON)
	if err != nil {
		f.fail(w, &fhir.InvalidError{Msg: err.Error()})
		return
	}
	m, err := ProveCoverage(r.Context(), f.agent.node, held, &ch)
	if err != nil {
		writeOutcome(w, http.StatusUnprocessableEntity, "business-rule", err.Error())
		return
	}
	answerParameters(w, base64Param("proof", m))
}

func (f *Facade) verifyCoverage(w http.ResponseWriter, r *http.Request) {
	p, ok := f.readParameters(w, r)
	if !ok {
		return
	}
	var m insurance.Verify
	if err := p.base64JSON("proof", &m); err != nil {
		f.fail(w, err)
		return
	}
	record := false
	if q, ok := p.one("record"); ok && q.ValueBoolean != nil {
		record = *q.ValueBoolean
	}
	yes, no := true, false
	err := f.agent.VerifyCoverage(r.Context(), &m, record)
	if err != nil && !errors.Is(err, ErrInvalidProof) && !isRefusal(err) {
		f.fail(w, err)
		return
	}
	if err != nil {
		answerParameters(w, parameter{Name: "covered", ValueBoolean: &no}, parameter{Name: "reason", ValueString: err.Error()})
		return
	}
	out := []parameter{{Name: "covered", ValueBoolean: &yes}, {Name: "insurer", ValueString: string(m.Insurer)},
		{Name: "patient", ValueString: string(m.Account)},
		{Name: "date", ValueDate: time.Unix(int64(m.Day)*86400, 0).UTC().Format(time.DateOnly)}, {Name: "recorded", ValueBoolean: &record}}
	for _, plan := range m.Plans {
		out = append(out, parameter{Name: "plan", ValueString: plan})
	}
	answerParameters(w, out...)
}

// isRefusal reports whether err is the ledger's or the node's answer that a proof does not hold
// (not a failure to ask).
func isRefusal(err error) bool {
	var te *client.TxError
	var ce *client.Error
	return errors.As(err, &te) || errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500
}
