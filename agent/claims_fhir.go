package agent

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/fhir"
)

// The ledger's adjudication of a claim as FHIR R4 resources: a ClaimResponse (what the provider
// reads) and an ExplanationOfBenefit (what the patient reads), both validated with the FHIR
// library before they are served.

const adjudicationSystem = "http://terminology.hl7.org/CodeSystem/adjudication"

type money struct {
	Value    json.Number `json:"value"`
	Currency string      `json:"currency"`
}

type adjudicationEntry struct {
	Category concept  `json:"category"`
	Reason   *concept `json:"reason,omitempty"`
	Amount   *money   `json:"amount,omitempty"`
}

// adjudications lists an item's amounts in the adjudication code system: submitted, eligible,
// deductible, copay, benefit; a denied or pended item says why.
func adjudications(r *insurance.ItemResult, currency string) []adjudicationEntry {
	amount := func(code string, v int64) adjudicationEntry {
		return adjudicationEntry{Category: concept{Coding: []coding{{System: adjudicationSystem, Code: code}}}, Amount: &money{formatMinor(v), currency}}
	}
	out := []adjudicationEntry{amount("submitted", r.Amount), amount("eligible", r.Allowed), amount("deductible", r.Deductible),
		amount("copay", r.CoPay), amount("benefit", r.Paid)}
	if r.Reason != "" {
		out[0].Reason = &concept{Text: r.Outcome + ": " + r.Reason}
	}
	return out
}

// fhirOutcome is a ledger outcome as a ClaimResponse's outcome: a pended claim is queued.
func fhirOutcome(outcome string) string {
	switch outcome {
	case insurance.Pended:
		return "queued"
	case insurance.Denied:
		return "error"
	}
	return "complete"
}

// disposition describes the outcome in words.
func disposition(cr *insurance.ClaimRecord) string {
	d := "Claim " + cr.Result.Outcome
	if cr.Result.Reason != "" {
		d += ": " + cr.Result.Reason
	}
	if cr.Review != "" {
		d += " (review: " + cr.Review + ")"
	}
	return d
}

type claimCommon struct {
	ResourceType string    `json:"resourceType"`
	ID           string    `json:"id"`
	Status       string    `json:"status"`
	Type         concept   `json:"type"`
	Use          string    `json:"use"`
	Patient      reference `json:"patient"`
	Created      string    `json:"created"`
	Insurer      reference `json:"insurer"`
	Outcome      string    `json:"outcome"`
	Disposition  string    `json:"disposition"`
}

type total struct {
	Category concept `json:"category"`
	Amount   money   `json:"amount"`
}

func common(typ string, cr *insurance.ClaimRecord, patientFHIR string) claimCommon {
	return claimCommon{ResourceType: typ, ID: cr.ID, Status: "active",
		Type: concept{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/claim-type", Code: "professional"}}},
		Use:  "claim", Patient: reference{Reference: "Patient/" + patientFHIR}, Created: time.Unix(cr.DecidedAt, 0).UTC().Format(time.RFC3339),
		Insurer: accountRef(cr.Insurer), Outcome: fhirOutcome(cr.Result.Outcome), Disposition: disposition(cr)}
}

func totals(cr *insurance.ClaimRecord) []total {
	var submitted int64
	for _, it := range cr.Result.Items {
		submitted += it.Amount
	}
	t := func(code string, v int64) total {
		return total{Category: concept{Coding: []coding{{System: adjudicationSystem, Code: code}}}, Amount: money{formatMinor(v), cr.Currency}}
	}
	return []total{t("submitted", submitted), t("benefit", cr.Result.Paid)}
}

type payment struct {
	Type   concept `json:"type"`
	Amount money   `json:"amount"`
}

func paymentOf(cr *insurance.ClaimRecord) *payment {
	if cr.Result.Paid == 0 {
		return nil
	}
	return &payment{Type: concept{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/ex-paymenttype", Code: "complete"}}},
		Amount: money{formatMinor(cr.Result.Paid), cr.Currency}}
}

// ClaimResponseResource renders the ledger's decision on a claim as a FHIR R4 ClaimResponse
// (id: the claim's, the Claim record's id).
func ClaimResponseResource(cr *insurance.ClaimRecord, patientFHIR string) ([]byte, error) {
	type item struct {
		ItemSequence int                 `json:"itemSequence"`
		Adjudication []adjudicationEntry `json:"adjudication"`
	}
	out := struct {
		claimCommon
		Requestor reference `json:"requestor"`
		Request   reference `json:"request"`
		Item      []item    `json:"item"`
		Total     []total   `json:"total"`
		Payment   *payment  `json:"payment,omitempty"`
	}{claimCommon: common("ClaimResponse", cr, patientFHIR), Requestor: accountRef(cr.Provider),
		Request: reference{Reference: "Claim/" + cr.ID}, Total: totals(cr)}
	for i := range cr.Result.Items {
		out.Item = append(out.Item, item{ItemSequence: i + 1, Adjudication: adjudications(&cr.Result.Items[i], cr.Currency)})
	}
	out.Payment = paymentOf(cr)
	return validated(out)
}

// ExplanationOfBenefitResource renders the ledger's decision on a claim for the patient, as a
// FHIR R4 ExplanationOfBenefit: each item with its service (the code from the Claim record when
// the reader could open it, else the ledger's service tag) and what the patient owes.
func ExplanationOfBenefitResource(cr *insurance.ClaimRecord, patientFHIR string, claim []byte) ([]byte, error) {
	var lines []claimLine
	if claim != nil {
		if res, err := fhir.Parse(claim); err == nil {
			if in, err := readClaim(res); err == nil && len(in.items) == len(cr.Result.Items) {
				lines = in.items
			}
		}
	}
	type item struct {
		Sequence         int                 `json:"sequence"`
		ProductOrService concept             `json:"productOrService"`
		Adjudication     []adjudicationEntry `json:"adjudication"`
	}
	type insuranceEntry struct {
		Focal    bool      `json:"focal"`
		Coverage reference `json:"coverage"`
	}
	out := struct {
		claimCommon
		Provider  reference        `json:"provider"`
		Claim     reference        `json:"claim"`
		Insurance []insuranceEntry `json:"insurance"`
		Item      []item           `json:"item"`
		Total     []total          `json:"total"`
		Payment   *payment         `json:"payment,omitempty"`
	}{claimCommon: common("ExplanationOfBenefit", cr, patientFHIR), Provider: accountRef(cr.Provider),
		Claim: reference{Reference: "Claim/" + cr.ID}, Total: totals(cr)}
	out.Insurance = []insuranceEntry{{Focal: true, Coverage: reference{Identifier: &identifier{System: PolicySystem, Value: cr.Policy}}}}
	if out.Outcome == "error" { // an EOB's outcome has no "error" for a denial: it is complete
		out.Outcome = "complete"
	}
	for i := range cr.Result.Items {
		r := &cr.Result.Items[i]
		svc := concept{Coding: []coding{{System: ServiceTagSystem, Code: r.Service}}}
		if lines != nil {
			svc = concept{Coding: []coding{{System: lines[i].system, Code: lines[i].code}}}
		}
		adj := adjudications(r, cr.Currency)
		if r.Outcome == insurance.Approved {
			adj = append(adj, adjudicationEntry{Category: concept{Text: "patient responsibility"}, Amount: &money{formatMinor(r.Allowed - r.Paid), cr.Currency}})
		}
		out.Item = append(out.Item, item{Sequence: i + 1, ProductOrService: svc, Adjudication: adj})
	}
	out.Payment = paymentOf(cr)
	return validated(out)
}

// validated encodes a resource and checks it with the FHIR library.
func validated(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if _, err := fhir.Parse(raw); err != nil {
		return nil, fmt.Errorf("agent: rendered an invalid resource: %v", err) // a bug, not the client's
	}
	return raw, nil
}
