package agent

import (
	"errors"
	"net/http"

	"github.com/medchain/medchain/fhir"
)

// Claims through the FHIR facade: POST /fhir/Claim/$submit stores the Claim as the patient's
// record and submits it to the ledger, answering the ledger's decision as a ClaimResponse;
// GET /fhir/ClaimResponse/{id} and /fhir/ExplanationOfBenefit/{id} read the decision on the
// Claim record id, for the claim's parties (its provider, its patient), with read access to the
// Claim.

func (f *Facade) submitClaim(w http.ResponseWriter, r *http.Request) {
	res, release, ok := f.readResource(w, r, "Claim")
	if !ok {
		return
	}
	defer release()
	if !f.mayWrite(r, res) {
		writeOutcome(w, http.StatusForbidden, "forbidden", "the token's scopes do not allow writing this Claim (its patient or category)")
		return
	}
	cr, _, err := f.agent.SubmitClaim(r.Context(), res)
	if errors.Is(err, ErrInvalidClaim) {
		writeOutcome(w, http.StatusUnprocessableEntity, "business-rule", err.Error())
		return
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	out, err := ClaimResponseResource(cr, res.Patient)
	if err != nil {
		f.fail(w, err)
		return
	}
	w.Header().Set("Location", "/fhir/ClaimResponse/"+cr.ID)
	writeFHIR(w, http.StatusOK, out)
}

// claimRecord reads the Claim record the request names, if the caller may read it.
func (f *Facade) claimRecord(r *http.Request) (*Plain, error) {
	id := r.PathValue("id")
	if !f.mayRead(r.Context(), id) {
		return nil, ErrNotFound
	}
	p, err := f.agent.ReadVersion(r.Context(), id, 0)
	if err != nil {
		return nil, err
	}
	if !f.agent.isType(r.Context(), p.Record, "Claim") || !f.permits(r.Context(), 'r', p.Record) {
		return nil, ErrNotFound
	}
	return p, nil
}

// serveDecision answers a claim's decision as a ClaimResponse, or with eob as an
// ExplanationOfBenefit.
func (f *Facade) serveDecision(w http.ResponseWriter, r *http.Request, eob bool) {
	p, err := f.claimRecord(r)
	if err != nil {
		f.fail(w, err)
		return
	}
	cr, err := f.agent.LedgerClaim(r.Context(), p)
	if err != nil {
		f.fail(w, err)
		return
	}
	res, err := fhir.Parse(p.JSON)
	if err != nil {
		f.fail(w, err)
		return
	}
	var out []byte
	if eob {
		out, err = ExplanationOfBenefitResource(cr, res.Patient, p.JSON)
	} else {
		out, err = ClaimResponseResource(cr, res.Patient)
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	writeFHIR(w, http.StatusOK, out)
}
