package coverage_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/tx"
)

var (
	keysOnce sync.Once
	keys     *coverage.Keys
	keysErr  error
)

// devKeys loads the ceremony's keys (embedded in the binary) once per test binary.
func devKeys(t testing.TB) *coverage.Keys {
	t.Helper()
	if testing.Short() {
		t.Skip("loads the circuit's keys")
	}
	keysOnce.Do(func() { keys, keysErr = coverage.CeremonyKeys(coverage.CeremonyHashes()) })
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return keys
}

const (
	patient      = tx.Address("0123456789abcdef0123456789abcdef01234567")
	insurerAcct  = tx.Address("1111111111111111111111111111111111111111")
	otherInsurer = tx.Address("2222222222222222222222222222222222222222")
)

// fixture is an insurer, a registry and one credential in it.
type fixture struct {
	insurer *coverage.Insurer
	reg     *coverage.Registry
	cred    *coverage.Credential
	index   int
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ins, err := coverage.NewInsurer(nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := coverage.NewRegistry()
	f := &fixture{insurer: ins, reg: reg}
	// Others' credentials around it, so that the path is not trivial.
	for i := range 3 {
		other := &coverage.Credential{Insurer: insurerAcct, MemberID: "M-" + string(rune('a'+i)), Plan: "gold", Start: day(2026, 1, 1), End: day(2026, 12, 31), Account: patient}
		if err := ins.Issue(other); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Add(other.Leaf()); err != nil {
			t.Fatal(err)
		}
	}
	f.cred = &coverage.Credential{Insurer: insurerAcct, MemberID: "W123456789", Plan: "silver-2026", Start: day(2026, 1, 1), End: day(2026, 12, 31), Account: patient}
	if err := ins.Issue(f.cred); err != nil {
		t.Fatal(err)
	}
	if f.index, err = reg.Add(f.cred.Leaf()); err != nil {
		t.Fatal(err)
	}
	return f
}

func day(y int, m time.Month, d int) uint32 {
	return coverage.Day(time.Date(y, m, d, 12, 0, 0, 0, time.UTC))
}

func nonce(t testing.TB) fr.Element {
	t.Helper()
	var e fr.Element
	if _, err := e.SetRandom(); err != nil {
		t.Fatal(err)
	}
	return e
}

func (f *fixture) statement(t testing.TB) *coverage.Statement {
	return &coverage.Statement{Insurer: string(insurerAcct), Day: day(2026, 6, 15), Plans: []string{"bronze-2026", "silver-2026"},
		Root: f.reg.Root(), Nonce: nonce(t), Verifier: "provider-account", Account: string(patient)}
}

func (f *fixture) prove(t testing.TB, k *coverage.Keys, s *coverage.Statement) ([]byte, error) {
	t.Helper()
	path, err := f.reg.Path(f.index)
	if err != nil {
		t.Fatal(err)
	}
	return coverage.Prove(k, s, f.cred, f.index, path)
}

// TestCoverageProofVerifies: a patient's proof of an unrevoked credential valid on the day for a
// plan of the set verifies, for its statement; the credential's signature checks natively.
func TestCoverageProofVerifies(t *testing.T) {
	k := devKeys(t)
	f := newFixture(t)
	if err := coverage.VerifyCredential(f.insurer.PublicKey(), f.cred); err != nil {
		t.Fatal(err)
	}
	s := f.statement(t)
	proof, err := f.prove(t, k, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := coverage.Verify(k.VK, s, proof); err != nil {
		t.Fatalf("a valid proof: %v", err)
	}
	if len(proof) > coverage.MaxProofBytes {
		t.Errorf("proof of %d bytes", len(proof))
	}
}

// TestAttackCoverageProofs: expired coverage, a plan not in the set, another insurer, a revoked
// credential, a tampered credential (its commitment is not the leaf the insurer appended) yield
// no proof; a proof does not verify for another nonce,
// another verifier, another account, day or plan set; garbage is refused.
func TestAttackCoverageProofs(t *testing.T) {
	k := devKeys(t)
	f := newFixture(t)
	// No proof can be made for a statement the credential does not satisfy.
	for name, edit := range map[string]func(s *coverage.Statement){
		"expired coverage":  func(s *coverage.Statement) { s.Day = day(2027, 1, 1) },
		"not yet covered":   func(s *coverage.Statement) { s.Day = day(2025, 12, 31) },
		"a plan not in set": func(s *coverage.Statement) { s.Plans = []string{"gold", "platinum"} },
		"another insurer":   func(s *coverage.Statement) { s.Insurer = string(otherInsurer) },
		"another account":   func(s *coverage.Statement) { s.Account = "fedcba9876543210fedcba9876543210fedcba98" },
		"another root":      func(s *coverage.Statement) { s.Root = nonce(t) },
	} {
		s := f.statement(t)
		edit(s)
		if _, err := f.prove(t, k, s); err == nil {
			t.Errorf("%s: a proof was made", name)
		}
	}
	tampered := *f.cred
	tampered.Plan = "gold"
	if err := coverage.VerifyCredential(f.insurer.PublicKey(), &tampered); err == nil {
		t.Error("a tampered credential's signature checks")
	}
	path, _ := f.reg.Path(f.index)
	if _, err := coverage.Prove(k, &coverage.Statement{Insurer: string(insurerAcct), Day: day(2026, 6, 15), Plans: []string{"gold"},
		Root: f.reg.Root(), Nonce: nonce(t), Verifier: "provider-account", Account: string(patient)}, &tampered, f.index, path); err == nil {
		t.Error("a tampered credential proved")
	}

	// A proof verifies for its own statement only.
	s := f.statement(t)
	proof, err := f.prove(t, k, s)
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(s *coverage.Statement){
		"another nonce":    func(s *coverage.Statement) { s.Nonce = nonce(t) },
		"another verifier": func(s *coverage.Statement) { s.Verifier = "another-provider" },
		"another account":  func(s *coverage.Statement) { s.Account = "fedcba9876543210fedcba9876543210fedcba98" },
		"another day":      func(s *coverage.Statement) { s.Day++ },
		"another plan set": func(s *coverage.Statement) { s.Plans = []string{"silver-2026"} },
		"another insurer":  func(s *coverage.Statement) { s.Insurer = string(otherInsurer) },
	} {
		c := *s
		edit(&c)
		if err := coverage.Verify(k.VK, &c, proof); !errors.Is(err, coverage.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	flipped := append([]byte(nil), proof...)
	flipped[len(flipped)/2] ^= 1
	for name, p := range map[string][]byte{"flipped": flipped, "empty": nil, "oversized": make([]byte, coverage.MaxProofBytes+1), "truncated": proof[:len(proof)/2]} {
		if err := coverage.Verify(k.VK, s, p); err == nil {
			t.Errorf("%s proof verified", name)
		}
	}
	// Revoked: the registry's new root has no leaf for it, and the old path does not lead there.
	if !f.reg.Revoke(f.cred.Leaf()) {
		t.Fatal("revoke")
	}
	s = f.statement(t) // the current root
	if _, err := coverage.Prove(k, s, f.cred, f.index, path); err == nil {
		t.Error("a revoked credential proved against the registry's root")
	}
	newPath, err := f.reg.Path(f.index)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := coverage.Prove(k, s, f.cred, f.index, newPath); err == nil {
		t.Error("a revoked credential proved with the registry's new path")
	}
}

// TestCoverageRegistry: the root changes with each credential added and revoked, a revoked
// leaf is gone, and paths are of the current tree.
func TestCoverageRegistry(t *testing.T) {
	reg := coverage.NewRegistry()
	empty := reg.Root()
	var leaves []fr.Element
	roots := map[fr.Element]bool{empty: true}
	for range 5 {
		var l fr.Element
		l.SetRandom()
		if _, err := reg.Add(l); err != nil {
			t.Fatal(err)
		}
		if roots[reg.Root()] {
			t.Fatal("a root repeated")
		}
		roots[reg.Root()] = true
		leaves = append(leaves, l)
	}
	if _, err := reg.Add(leaves[0]); err == nil {
		t.Error("a leaf added twice")
	}
	var zero fr.Element
	if _, err := reg.Add(zero); err == nil {
		t.Error("a zero leaf added")
	}
	before := reg.Root()
	if !reg.Revoke(leaves[2]) || reg.Revoke(leaves[2]) || reg.Root() == before {
		t.Error("revocation")
	}
	if _, ok := reg.IndexOf(leaves[2]); ok {
		t.Error("a revoked leaf is still indexed")
	}
	if _, err := reg.Path(99); err == nil {
		t.Error("a path to a leaf not there")
	}
}
