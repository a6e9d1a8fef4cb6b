package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/programs"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// Healthy-behaviour programs (contracts/programs). The patient's agent enrolls, grants the
// program's sponsor its categories for the purpose "requested by the patient" (PATRQT) and
// registers its devices' keys; a device signs each reading (SignReading) and the reading is
// stored as the patient's Observation. The sponsor's agent (EvaluateProgram) reads the patient's
// Observations of the period under that grant, counts only readings signed by a registered
// device of the patient's (and, for a program that reads immunizations, completed Immunizations
// written by an attested provider), evaluates the program's rule off the ledger and credits the points
// with the counted readings' hashes, so that no reading counts twice.

// Extensions carrying a device's key and signature on an Observation.
const (
	extDeviceKey       = "https://medchain.dev/fhir/StructureDefinition/device-key"
	extDeviceSignature = "https://medchain.dev/fhir/StructureDefinition/device-signature"
	programPurpose     = "PATRQT"
)

// EnrollProgram enrolls the agent's patient in a program and grants its sponsor the program's
// categories (read, PATRQT) until expiry.
func (a *Agent) EnrollProgram(ctx context.Context, program string, expiry time.Time) error {
	p, err := a.node.Program(ctx, program, "", nil)
	if err != nil {
		return fmt.Errorf("agent: program %s: %w", program, notFound(err))
	}
	if _, err := a.signer.Send(ctx, programs.TypeEnroll, programs.Enroll{Program: program}); err != nil {
		return err
	}
	_, err = a.Grant(ctx, consent.GrantMsg{Grantee: p.Program.Sponsor, Categories: p.Program.Categories, Purposes: []string{programPurpose}, Expiry: expiry})
	return err
}

// RegisterDevice registers a device's public key for the agent's patient.
func (a *Agent) RegisterDevice(ctx context.Context, key ed25519.PublicKey) error {
	_, err := a.signer.Send(ctx, programs.TypeDevice, programs.Device{Key: key})
	return err
}

// reading is an Observation's signed reading, as the device signed it.
type reading struct {
	code, value, at string
	key, sig        []byte
}

// readingOf extracts an Observation's code ("system|code"), value (as written), effective
// instant and device key and signature.
func readingOf(raw []byte) (*reading, bool) {
	var o struct {
		Code struct {
			Coding []struct{ System, Code string } `json:"coding"`
		} `json:"code"`
		EffectiveDateTime string `json:"effectiveDateTime"`
		ValueQuantity     struct {
			Value json.RawMessage `json:"value"`
		} `json:"valueQuantity"`
		Extension []struct {
			URL               string `json:"url"`
			ValueBase64Binary string `json:"valueBase64Binary"`
		} `json:"extension"`
	}
	if json.Unmarshal(raw, &o) != nil || len(o.Code.Coding) == 0 || len(o.ValueQuantity.Value) == 0 || o.EffectiveDateTime == "" {
		return nil, false
	}
	r := &reading{code: o.Code.Coding[0].System + "|" + o.Code.Coding[0].Code, value: string(o.ValueQuantity.Value), at: o.EffectiveDateTime}
	for _, e := range o.Extension {
		b, _ := base64.StdEncoding.DecodeString(e.ValueBase64Binary)
		switch e.URL {
		case extDeviceKey:
			r.key = b
		case extDeviceSignature:
			r.sig = b
		}
	}
	return r, true
}

// SignReading is what a patient's device does: it signs an Observation's reading (code, value,
// effective instant) for the patient on chain chainID and adds its key and signature.
func SignReading(device ed25519.PrivateKey, chainID string, patient tx.Address, obs []byte) ([]byte, error) {
	r, ok := readingOf(obs)
	if !ok {
		return nil, &fhir.InvalidError{Msg: "a reading is an Observation with a code, a valueQuantity and an effectiveDateTime"}
	}
	sig := ed25519.Sign(device, programs.ReadingStatement(chainID, patient, r.code, r.value, r.at))
	var doc map[string]any
	if err := json.Unmarshal(obs, &doc); err != nil {
		return nil, err
	}
	ext, _ := doc["extension"].([]any)
	doc["extension"] = append(ext,
		map[string]any{"url": extDeviceKey, "valueBase64Binary": base64.StdEncoding.EncodeToString(device.Public().(ed25519.PublicKey))},
		map[string]any{"url": extDeviceSignature, "valueBase64Binary": base64.StdEncoding.EncodeToString(sig)})
	return json.Marshal(doc)
}

// ProgramResult is a program's evaluation for one patient and period.
type ProgramResult struct {
	Achieved bool
	Counted  int // signed readings of a registered device, in the period
	Rejected int // readings left out: unsigned, a bad signature, an unregistered device, another patient's
	Points   int64
	Height   int64
}

// EvaluateProgram evaluates a program for patient over a period (0: the first period after the
// enrollment) as its sponsor's agent and, if achieved, credits it on the ledger.
func (a *Agent) EvaluateProgram(ctx context.Context, program string, patient tx.Address, period int) (*ProgramResult, error) {
	v, err := a.node.Program(ctx, program, patient, nil)
	if err != nil {
		return nil, fmt.Errorf("agent: program %s: %w", program, notFound(err))
	}
	if v.Enrollment == nil || v.Enrollment.Left {
		return nil, fmt.Errorf("agent: %s is not enrolled in program %s: %w", patient, program, ErrNotFound)
	}
	p := v.Program
	from := v.Enrollment.At.AddDate(0, 0, period*p.PeriodDays)
	to := from.AddDate(0, 0, p.PeriodDays)
	plains, err := a.WithPurpose(programPurpose).Search(ctx, patient, "Observation", nil)
	if err != nil {
		return nil, err
	}
	res := &ProgramResult{}
	best := map[string]map[string]any{} // code and day -> the day's highest reading
	var hashes [][]byte
	devices := map[string]bool{}
	counted := map[[sha256.Size]byte]bool{}
	for _, pl := range plains {
		r, ok := readingOf(pl.JSON)
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339, r.at)
		if err != nil || at.Before(from) || !at.Before(to) {
			continue
		}
		statement := programs.ReadingStatement(a.signer.ChainID, patient, r.code, r.value, r.at)
		if !programs.VerifyReading(r.key, statement, r.sig) {
			res.Rejected++
			continue
		}
		registered, known := devices[string(r.key)]
		if !known {
			dv, err := a.node.Program(ctx, program, patient, r.key)
			if err != nil {
				return nil, err
			}
			registered = dv.DeviceRegistered
			devices[string(r.key)] = registered
		}
		if !registered {
			res.Rejected++
			continue
		}
		var value float64
		if err := json.Unmarshal([]byte(r.value), &value); err != nil {
			res.Rejected++
			continue
		}
		h := sha256.Sum256(statement)
		if counted[h] { // the same signed reading stored again: it counts once
			res.Rejected++
			continue
		}
		counted[h] = true
		day := at.Unix() / 86400
		k := fmt.Sprintf("%s\n%d", r.code, day)
		if b, ok := best[k]; !ok || b["value"].(float64) < value {
			best[k] = map[string]any{"code": r.code, "value": value, "day": day}
		}
		hashes = append(hashes, h[:])
		res.Counted++
	}
	readings := make([]any, 0, len(best))
	for _, b := range best {
		readings = append(readings, b)
	}
	immunizations := []any{}
	if slices.Contains(p.Categories, "immunizations") {
		vax, vaxHashes, rejected, err := a.programImmunizations(ctx, patient, from, to)
		if err != nil {
			return nil, err
		}
		immunizations, hashes = vax, append(hashes, vaxHashes...)
		res.Counted, res.Rejected = res.Counted+len(vaxHashes), res.Rejected+rejected
	}
	rule, err := programs.CompileRule(p.Rule)
	if err != nil {
		return nil, err
	}
	out, _, err := rule.Eval(map[string]any{"readings": readings, "immunizations": immunizations, "days": int64(p.PeriodDays)})
	if err != nil {
		return nil, fmt.Errorf("agent: program %s's rule: %w", program, err)
	}
	if achieved, _ := out.Value().(bool); !achieved || len(hashes) == 0 {
		return res, nil
	}
	slices.SortFunc(hashes, bytes.Compare)
	sent, err := a.signer.Send(ctx, programs.TypeCredit, programs.Credit{Program: program, Patient: patient, Period: period, Readings: hashes})
	if err != nil {
		return res, err
	}
	res.Achieved, res.Points, res.Height = true, p.Points, sent.Height
	return res, nil
}

// programImmunizations reads the patient's completed Immunizations of [from, to) under the
// program's grant and keeps those an attested practitioner or clinical organization (hospital,
// lab, pharmacy) other than the patient wrote (attested when the record was anchored): a
// patient's own record of a vaccination, or one by an employer or insurer, earns nothing. It
// returns them as rule input ({code, day}, one per vaccine code and day however many records
// say so), with every counted record's statement hash, and how many it left out.
func (a *Agent) programImmunizations(ctx context.Context, patient tx.Address, from, to time.Time) ([]any, [][]byte, int, error) {
	plains, err := a.WithPurpose(programPurpose).Search(ctx, patient, "Immunization", nil)
	if err != nil {
		return nil, nil, 0, err
	}
	var (
		out      []any
		hashes   [][]byte
		rejected int
		authors  = map[tx.Address][]identity.Attestation{}
		days     = map[string]bool{} // code and day
	)
	for _, pl := range plains {
		var im struct {
			Status      string `json:"status"`
			VaccineCode struct {
				Coding []struct{ System, Code string } `json:"coding"`
			} `json:"vaccineCode"`
			OccurrenceDateTime string `json:"occurrenceDateTime"`
		}
		if json.Unmarshal(pl.JSON, &im) != nil || im.Status != "completed" || len(im.VaccineCode.Coding) == 0 {
			continue
		}
		at, err := time.Parse(time.RFC3339, im.OccurrenceDateTime)
		if err != nil {
			at, err = time.Parse(time.DateOnly, im.OccurrenceDateTime)
		}
		if err != nil || at.Before(from) || !at.Before(to) {
			continue
		}
		ok, err := a.attestedProvider(ctx, pl.Record.Author, pl.Record.CreatedAt, true, authors)
		if err != nil {
			return nil, nil, 0, err
		}
		if pl.Record.Author == patient || !ok {
			rejected++
			continue
		}
		c := im.VaccineCode.Coding[0]
		code, day := c.System+"|"+c.Code, at.Unix()/86400
		h := sha256.Sum256(programs.ImmunizationStatement(a.signer.ChainID, patient, pl.Record.ID))
		hashes = append(hashes, h[:])
		if k := fmt.Sprintf("%s\n%d", code, day); !days[k] { // one vaccination recorded twice counts once
			days[k] = true
			out = append(out, map[string]any{"code": code, "day": day})
		}
	}
	return out, hashes, rejected, nil
}

// attestedProvider reports whether author is a practitioner or an organization (with
// clinicalOnly, a practitioner or a hospital, lab or pharmacy) with an attestation active at t;
// an account the ledger does not know is not one. With a Trust, the account and each
// attestation are checked against a verified header (a lying node can hide an attestation, not
// make one up). What the ledger says of each author is kept in seen (nil: not a provider of the
// kind asked).
func (a *Agent) attestedProvider(ctx context.Context, author tx.Address, t time.Time, clinicalOnly bool, seen map[tx.Address][]identity.Attestation) (bool, error) {
	list, known := seen[author]
	if !known {
		var acc *identity.Account
		var err error
		if a.cfg.Trust != nil {
			acc, err = a.cfg.Trust.Account(ctx, a.node, author)
		} else {
			acc, _, err = a.node.Account(ctx, author, false)
		}
		if client.IsNotFound(err) {
			seen[author] = nil
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("agent: the account of %s: %w", author, err)
		}
		provider := acc.Role == identity.RolePractitioner || acc.Role == identity.RoleOrganization &&
			(!clinicalOnly || slices.Contains(clinicalKinds, acc.OrgKind))
		if provider {
			if list, err = a.attestations(ctx, author); err != nil {
				return false, err
			}
		}
		seen[author] = list
	}
	return slices.ContainsFunc(list, func(at identity.Attestation) bool { return at.ActiveAt(t) }), nil
}

// attestations lists a subject's attestations, each verified against a header with a Trust.
func (a *Agent) attestations(ctx context.Context, subject tx.Address) ([]identity.Attestation, error) {
	list, _, err := a.node.Attestations(ctx, subject, false)
	if err != nil {
		return nil, fmt.Errorf("agent: the attestations of %s: %w", subject, err)
	}
	if a.cfg.Trust == nil {
		return list, nil
	}
	verified := make([]identity.Attestation, 0, len(list))
	for _, at := range list {
		raw, err := a.cfg.Trust.Get(ctx, a.node, identity.AttestationKey(subject, at.ID), 0)
		if err != nil {
			return nil, fmt.Errorf("agent: verify attestation %d of %s: %w", at.ID, subject, err)
		}
		var v identity.Attestation
		if err := json.Unmarshal(raw, &v); err != nil || v.Subject != subject {
			return nil, fmt.Errorf("agent: attestation %d of %s does not decode as one", at.ID, subject)
		}
		verified = append(verified, v)
	}
	return verified, nil
}

// clinicalKinds are the organizations whose record of a vaccination a program counts.
var clinicalKinds = []string{"hospital", "lab", "pharmacy"}
