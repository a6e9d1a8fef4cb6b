package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// AccountSystem is the identifier system of a ledger account in FHIR (an Organization's or
// Practitioner's identifier, or a reference's).
const AccountSystem = systemAccount

// PolicySystem is the identifier system of an insurer's policy id, as a Claim's
// insurance.coverage names it.
const PolicySystem = "urn:medchain:policy"

// ServiceTagSystem is the code system of a service named by its tag only (an explanation of
// benefit read by someone who cannot open the claim's codes).
const ServiceTagSystem = "urn:medchain:service-tag"

// claimInput is what a FHIR Claim says for the ledger.
type claimInput struct {
	patientFHIR string
	insurer     tx.Address
	policy      string
	record      string
	day         uint32
	currency    string
	items       []claimLine
}

// claimLine is one item of a FHIR Claim.
type claimLine struct {
	system, code string
	amount       int64 // minor units
}

type fhirRef struct {
	Reference  string `json:"reference"`
	Identifier struct {
		System string `json:"system"`
		Value  string `json:"value"`
	} `json:"identifier"`
}

// account reads a reference to a ledger account: an identifier of AccountSystem, or a
// reference whose id is an address ("Organization/<address>").
func (r *fhirRef) account() (tx.Address, bool) {
	if r.Identifier.System == AccountSystem && tx.Address(r.Identifier.Value).Validate() == nil {
		return tx.Address(r.Identifier.Value), true
	}
	if i := strings.LastIndexByte(r.Reference, '/'); i >= 0 && tx.Address(r.Reference[i+1:]).Validate() == nil {
		return tx.Address(r.Reference[i+1:]), true
	}
	return "", false
}

type fhirMoney struct {
	Value    json.Number `json:"value"`
	Currency string      `json:"currency"`
}

// MinorUnits reads a decimal amount ("120", "120.5", "120.50") exactly, in hundredths.
func MinorUnits(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 2 || whole == "" || strings.HasPrefix(whole, "-") {
		return 0, fmt.Errorf("amount %s: a non-negative amount with at most two decimals", s)
	}
	frac += strings.Repeat("0", 2-len(frac))
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil || n > insurance.MaxAmount {
		return 0, fmt.Errorf("amount %s: out of range", s)
	}
	return n, nil
}

// formatMinor renders minor units as a FHIR decimal.
func formatMinor(n int64) json.Number { return json.Number(fmt.Sprintf("%d.%02d", n/100, n%100)) }

// readClaim reads what the ledger needs from a validated FHIR R4 Claim: the patient; the insurer
// (an identifier of AccountSystem, or Organization/<address>); the policy (the focal
// insurance's coverage identifier of PolicySystem); the Procedure or Encounter record it bills
// (procedure.procedureReference, or the first item's encounter); the date of service; and each
// item's code (CPT, HCPCS or SNOMED CT) and net amount.
func readClaim(res *fhir.Resource) (*claimInput, error) {
	var doc struct {
		Patient   fhirRef `json:"patient"`
		Insurer   fhirRef `json:"insurer"`
		Created   string  `json:"created"`
		Insurance []struct {
			Focal    bool    `json:"focal"`
			Coverage fhirRef `json:"coverage"`
		} `json:"insurance"`
		Procedure []struct {
			ProcedureReference fhirRef `json:"procedureReference"`
		} `json:"procedure"`
		BillablePeriod struct {
			Start string `json:"start"`
		} `json:"billablePeriod"`
		Item []struct {
			ProductOrService struct {
				Coding []struct {
					System string `json:"system"`
					Code   string `json:"code"`
				} `json:"coding"`
			} `json:"productOrService"`
			ServicedDate string    `json:"servicedDate"`
			Net          fhirMoney `json:"net"`
			Encounter    []fhirRef `json:"encounter"`
		} `json:"item"`
	}
	dec := json.NewDecoder(bytes.NewReader(res.JSON))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, &fhir.InvalidError{Msg: err.Error()}
	}
	invalid := func(format string, args ...any) error {
		return &fhir.InvalidError{Msg: "Claim: " + fmt.Sprintf(format, args...)}
	}
	in := &claimInput{patientFHIR: strings.TrimPrefix(doc.Patient.Reference, "Patient/")}
	var ok bool
	if in.insurer, ok = doc.Insurer.account(); !ok {
		return nil, invalid("insurer must name the insurer's ledger account (identifier system %s, or Organization/<address>)", AccountSystem)
	}
	for _, ins := range doc.Insurance {
		if (ins.Focal || len(doc.Insurance) == 1) && ins.Coverage.Identifier.System == PolicySystem {
			in.policy = ins.Coverage.Identifier.Value
		}
	}
	if in.policy == "" {
		return nil, invalid("the focal insurance's coverage must name the policy (identifier system %s)", PolicySystem)
	}
	for _, p := range doc.Procedure {
		if id, found := strings.CutPrefix(p.ProcedureReference.Reference, "Procedure/"); found && in.record == "" {
			in.record = id
		}
	}
	if in.record == "" && len(doc.Item) > 0 && len(doc.Item[0].Encounter) > 0 {
		in.record, _ = strings.CutPrefix(doc.Item[0].Encounter[0].Reference, "Encounter/")
	}
	if in.record == "" {
		return nil, invalid("a claim bills a Procedure (procedure.procedureReference) or an Encounter (item.encounter) on the ledger")
	}
	if len(doc.Item) == 0 || len(doc.Item) > insurance.MaxClaimItems {
		return nil, invalid("1..%d items", insurance.MaxClaimItems)
	}
	date := doc.BillablePeriod.Start
	for i, it := range doc.Item {
		var line claimLine
		for _, c := range it.ProductOrService.Coding {
			if slices.Contains(insurance.CodeSystems, c.System) && line.code == "" {
				line.system, line.code = c.System, c.Code
			}
		}
		if line.code == "" {
			return nil, invalid("item %d: productOrService needs a code of %s", i+1, strings.Join(insurance.CodeSystems, ", "))
		}
		if it.Net.Value == "" {
			return nil, invalid("item %d: net (the amount billed) is required", i+1)
		}
		var err error
		if line.amount, err = MinorUnits(string(it.Net.Value)); err != nil {
			return nil, invalid("item %d: %v", i+1, err)
		}
		if in.currency == "" {
			in.currency = it.Net.Currency
		} else if it.Net.Currency != in.currency {
			return nil, invalid("items are billed in more than one currency")
		}
		if date == "" {
			date = it.ServicedDate
		}
		in.items = append(in.items, line)
	}
	if date == "" {
		date = doc.Created
	}
	t, err := time.Parse(time.DateOnly, date[:min(len(date), 10)])
	if err != nil {
		return nil, invalid("no date of service (billablePeriod.start, item.servicedDate or created)")
	}
	in.day = coverage.Day(t)
	return in, nil
}

// SubmitClaim stores a FHIR Claim as a record of its patient (an encrypted record like any
// other: the codes travel only there) and submits it to the ledger, where it is adjudicated at
// once; it returns the claim as the ledger decided it, and the stored Claim. The services are
// named by their tags under the policy's service key (Config.ServiceKeys).
func (a *Agent) SubmitClaim(ctx context.Context, res *fhir.Resource) (*insurance.ClaimRecord, *Stored, error) {
	if res.Type != "Claim" {
		return nil, nil, &fhir.InvalidError{Msg: "a " + res.Type + " is not a Claim"}
	}
	in, err := readClaim(res)
	if err != nil {
		return nil, nil, err
	}
	key := a.cfg.ServiceKeys[string(in.insurer)+"/"+in.policy]
	if len(key) != insurance.ServiceKeyBytes {
		return nil, nil, fmt.Errorf("%w: this agent has no service key for policy %q of %s", ErrInvalidClaim, in.policy, in.insurer)
	}
	p, err := a.node.Policy(ctx, in.insurer, in.policy)
	if err != nil {
		return nil, nil, err
	}
	if in.currency != "" && in.currency != p.Currency {
		return nil, nil, &fhir.InvalidError{Msg: fmt.Sprintf("Claim: billed in %s, the policy pays in %s", in.currency, p.Currency)}
	}
	patient, err := a.PatientAccount(in.patientFHIR)
	if err != nil {
		return nil, nil, err
	}
	rec, err := a.node.Record(ctx, in.record)
	if err != nil || rec.Patient != patient {
		return nil, nil, &fhir.InvalidError{Msg: fmt.Sprintf("Claim: the billed record %q is not one of this patient's on the ledger that this agent may see", in.record)}
	}
	// The ledger sees the record's type only as the patient's tag; the provider's agent, which
	// holds the patient's tag key, checks it bills a Procedure or an Encounter.
	if !a.isType(ctx, rec, "Procedure") && !a.isType(ctx, rec, "Encounter") {
		return nil, nil, &fhir.InvalidError{Msg: fmt.Sprintf("Claim: record %q is neither a Procedure nor an Encounter", in.record)}
	}
	stored, err := a.AddResource(ctx, res)
	if err != nil {
		return nil, nil, err
	}
	m := insurance.Claim{ID: stored.Anchor.ID, Insurer: in.insurer, Policy: in.policy, Patient: patient, Record: in.record, Day: in.day}
	for _, l := range in.items {
		m.Items = append(m.Items, insurance.ClaimItem{Service: insurance.ServiceTag(key, l.system, l.code), Amount: l.amount})
	}
	if _, err := a.signer.Send(ctx, insurance.TypeClaim, m); err != nil {
		return nil, stored, err
	}
	cr, err := a.node.Claim(ctx, a.Address(), m.ID)
	return cr, stored, err
}

// ErrInvalidClaim is a claim this agent cannot submit as it stands.
var ErrInvalidClaim = errors.New("agent: invalid claim")

// LedgerClaim reads the ledger's claim for a stored FHIR Claim (by the Claim record): the
// provider is the record's author. Only the claim's parties read it.
func (a *Agent) LedgerClaim(ctx context.Context, claim *Plain) (*insurance.ClaimRecord, error) {
	cr, err := a.node.Claim(ctx, claim.Record.Author, claim.Record.ID)
	if client.IsNotFound(err) {
		return nil, ErrNotFound
	}
	return cr, err
}
