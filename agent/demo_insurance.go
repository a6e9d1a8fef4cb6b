package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/fsutil"
	"github.com/medchain/medchain/tx"
)

//go:embed demo/insurance/*.json
var demoInsuranceFS embed.FS

// DemoPolicy is the demo insurer's policy.
const DemoPolicy = "demo-basic"

// DemoServiceKey reads the dev network's service key of the demo policy from home, drawing it on
// first use (a file of the home, like the dev keys: development only).
func DemoServiceKey(home string) ([]byte, error) {
	path := filepath.Join(home, "demo-service.key")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k := make([]byte, insurance.ServiceKeyBytes)
		rand.Read(k)
		return k, fsutil.WriteFileAtomic(path, []byte(hex.EncodeToString(k)+"\n"), 0o600)
	}
	if err != nil {
		return nil, err
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(k) != insurance.ServiceKeyBytes {
		return nil, fmt.Errorf("%s is not a service key", path)
	}
	return k, nil
}

// DemoInsurance are the accounts the demo insurance data involves.
type DemoInsurance struct {
	Patient, Insurer *client.Signer
	ServiceKey       []byte
}

// demoBenefits are the demo policy's covered services: CPT codes, allowed amounts (cents),
// and prior authorization.
var demoBenefits = []struct {
	code      string
	allowed   int64
	priorAuth bool
}{{"99213", 10_000, false}, {"99214", 15_000, false}, {"71046", 8_000, false}, {"27447", 1_500_000, true}}

// SeedDemoInsurance gives a fresh dev network its demo insurance, once: the insurer registers its
// coverage key, issues the demo patient a credential from the demo card (covering this year and
// next), registers the demo policy (CPT 99213, 99214, 71046, and 27447 with prior
// authorization; 50.00 deductible, 10.00 co-pay, 5,000.00 a year) and enrolls the patient, and
// funds its balance; the patient keeps the card and credential as a record and lets the
// insurer read its procedures and encounters for payment. It does nothing on a chain without
// coverage keys, or where the insurer has a coverage key already.
func SeedDemoInsurance(ctx context.Context, s DemoInsurance) (bool, error) {
	if _, err := s.Insurer.Reads().CoverageKeys(ctx); client.IsNotFound(err) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	insurer := s.Insurer.Address()
	if _, err := s.Insurer.Reads().Insurer(ctx, insurer); err == nil {
		return false, nil
	} else if !client.IsNotFound(err) {
		return false, err
	}
	signer, err := coverage.InsurerFromSeed(s.Insurer.Key.Signing.Seed())
	if err != nil {
		return false, err
	}
	now := time.Now().UTC()
	card, _ := demoInsuranceFS.ReadFile("demo/insurance/coverage.json")
	card = bytes.Replace(card, []byte("START"), []byte(fmt.Sprintf("%d-01-01", now.Year())), 1)
	card = bytes.Replace(card, []byte("END"), []byte(fmt.Sprintf("%d-12-31", now.Year()+1)), 1)
	cred, err := CredentialFromCoverage(card, insurer, s.Patient.Address())
	if err != nil {
		return false, err
	}
	if err := signer.Issue(cred); err != nil {
		return false, err
	}
	policy := insurance.RegisterPolicy{ID: DemoPolicy, Name: "Demo Basic", Currency: "EUR", AnnualLimit: 500_000, Deductible: 5_000, CoPay: 1_000}
	for _, b := range demoBenefits {
		policy.Benefits = append(policy.Benefits, insurance.Benefit{Service: insurance.ServiceTag(s.ServiceKey, insurance.CodeSystems[0], b.code),
			Allowed: b.allowed, PriorAuth: b.priorAuth})
	}
	leaf := cred.Leaf()
	lb := leaf.Bytes()
	steps := []struct {
		who *client.Signer
		typ string
		msg any
	}{
		{s.Insurer, insurance.TypeRegisterKey, insurance.RegisterKey{Key: signer.PublicKey()}},
		{s.Insurer, insurance.TypeIssue, insurance.Issue{Credentials: []insurance.Issued{insurance.IssuedOf(cred)}}},
		{s.Insurer, insurance.TypeRegisterPolicy, policy},
		{s.Insurer, insurance.TypeEnroll, insurance.Enroll{Policy: DemoPolicy, Member: s.Patient.Address(), Leaf: lb[:], Start: cred.Start, End: cred.End}},
		{s.Insurer, insurance.TypeDeposit, insurance.Deposit{Amount: 10_000_000}},
	}
	for _, st := range steps {
		if _, err := st.who.Send(ctx, st.typ, st.msg); err != nil {
			return false, fmt.Errorf("demo %s: %w", st.typ, err)
		}
	}
	patient := New(s.Patient, Config{Patients: map[string]tx.Address{"example": s.Patient.Address()}})
	if _, err := patient.StoreCoverage(ctx, card, &coverage.Held{Insurer: insurer, Credential: *cred}); err != nil {
		return false, fmt.Errorf("demo coverage record: %w", err)
	}
	if _, err := patient.Grant(ctx, consent.GrantMsg{Grantee: insurer, Categories: []string{"procedures", "encounters"},
		Purposes: []string{"HPAYMT"}, Expiry: now.AddDate(1, 0, 0)}); err != nil {
		return false, fmt.Errorf("demo payment consent: %w", err)
	}
	return true, nil
}
