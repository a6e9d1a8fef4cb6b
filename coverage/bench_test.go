package coverage_test

import (
	"testing"

	"github.com/medchain/medchain/coverage"
)

// BenchmarkCoverageProve is the patient's agent making one proof (witness, Groth16 prove).
func BenchmarkCoverageProve(b *testing.B) {
	k := devKeys(b)
	f := newFixture(b)
	s := f.statement(b)
	for b.Loop() {
		if _, err := f.prove(b, k, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(k.CS.GetNbConstraints()), "constraints")
}

// BenchmarkCoverageVerify is a provider checking one proof; it reports the proof's size.
func BenchmarkCoverageVerify(b *testing.B) {
	k := devKeys(b)
	f := newFixture(b)
	s := f.statement(b)
	proof, err := f.prove(b, k, s)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := coverage.Verify(k.VK, s, proof); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(proof)), "proof-bytes")
}

// BenchmarkCoverageIssue is an insurer issuing one credential (commitment and EdDSA signature).
func BenchmarkCoverageIssue(b *testing.B) {
	ins, err := coverage.NewInsurer(nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c := &coverage.Credential{Insurer: insurerAcct, MemberID: "W123", Plan: "gold", Start: 1, End: 2, Account: patient}
		if err := ins.Issue(c); err != nil {
			b.Fatal(err)
		}
	}
}
