package coverage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"

	"github.com/medchain/medchain/fsutil"
)

// The circuit's keys come from a multi-party Groth16 setup (gnark's mpcsetup: phase 1, the
// powers of tau; phase 2, specific to the circuit), kept as a transcript in a directory:
//
//	phase1-01.bin ...   each phase-1 contribution, in order
//	phase1-beacon.txt   the public random beacon that seals phase 1 (hex)
//	phase2-01.bin ...   each phase-2 contribution, in order
//	phase2-beacon.txt   the beacon that seals phase 2 (hex)
//	proving.key         the Groth16 proving key (gnark's compressed encoding)
//	verifying.key       the verifying key
//
// The keys are safe as long as one contributor destroyed its randomness; anyone can check the
// transcript and reproduce both keys from it, byte for byte (VerifyCeremony).
const (
	ProvingKeyFile   = "proving.key"
	VerifyingKeyFile = "verifying.key"
	phase1Beacon     = "phase1-beacon.txt"
	phase2Beacon     = "phase2-beacon.txt"
	maxContributions = 99
)

// Progress receives one line per step of a long ceremony operation.
type Progress func(format string, args ...any)

func (p Progress) say(format string, args ...any) {
	if p != nil {
		p(format, args...)
	}
}

// compiledR1CS compiles the circuit as the ceremony needs it, with its domain size.
func compiledR1CS() (*cs.R1CS, uint64, error) {
	ccs, err := Compile()
	if err != nil {
		return nil, 0, err
	}
	r, ok := ccs.(*cs.R1CS)
	if !ok {
		return nil, 0, errors.New("coverage: the circuit did not compile to a BN254 R1CS")
	}
	return r, ecc.NextPowerOfTwo(uint64(r.GetNbConstraints())), nil
}

// contributionFile names the n-th contribution (from 1) of a phase.
func contributionFile(dir string, phase, n int) string {
	return filepath.Join(dir, fmt.Sprintf("phase%d-%02d.bin", phase, n))
}

// contributions counts a phase's contributions in dir (they are numbered without gaps).
func contributions(dir string, phase int) int {
	n := 0
	for n < maxContributions {
		if _, err := os.Stat(contributionFile(dir, phase, n+1)); err != nil {
			break
		}
		n++
	}
	return n
}

// readObject reads one transcript file into v (gnark's ReadFrom checks the points it decodes).
func readObject(path string, v io.ReaderFrom) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := v.ReadFrom(f); err != nil {
		return fmt.Errorf("coverage: read %s: %w", filepath.Base(path), err)
	}
	return nil
}

// writeObject writes v to path atomically.
func writeObject(path string, v io.WriterTo) error {
	var b bytes.Buffer
	if _, err := v.WriteTo(&b); err != nil {
		return fmt.Errorf("coverage: encode %s: %w", filepath.Base(path), err)
	}
	return fsutil.WriteFileAtomic(path, b.Bytes(), 0o644)
}

func readBeacon(dir, name string) ([]byte, error) {
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("coverage: %s: %w (is the phase sealed?)", name, err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(b) < 16 {
		return nil, fmt.Errorf("coverage: %s must hold at least 16 bytes in hex", name)
	}
	return b, nil
}

// Contribute adds one contribution to the phase (1 or 2) of the ceremony in dir: it reads the
// last contribution (or starts the phase), mixes in fresh randomness, and writes the next file.
// Phase 2 starts once phase 1 is sealed.
func Contribute(dir string, phase int, progress Progress) error {
	n := contributions(dir, phase)
	if n >= maxContributions {
		return fmt.Errorf("coverage: phase %d has %d contributions already", phase, n)
	}
	switch phase {
	case 1:
		if _, err := os.Stat(filepath.Join(dir, phase1Beacon)); err == nil {
			return errors.New("coverage: phase 1 is sealed; contribute to phase 2")
		}
		_, domain, err := compiledR1CS()
		if err != nil {
			return err
		}
		p := mpcsetup.NewPhase1(domain)
		if n > 0 {
			progress.say("reading phase 1 contribution %d", n)
			if err := readObject(contributionFile(dir, 1, n), p); err != nil {
				return err
			}
		}
		progress.say("contributing to phase 1 (domain %d)", domain)
		p.Contribute()
		return writeObject(contributionFile(dir, 1, n+1), p)
	case 2:
		if _, err := os.Stat(filepath.Join(dir, phase2Beacon)); err == nil {
			return errors.New("coverage: phase 2 is sealed")
		}
		r, commons, err := sealedPhase1(dir, progress)
		if err != nil {
			return err
		}
		var p mpcsetup.Phase2
		if n == 0 {
			progress.say("initializing phase 2 for %d constraints", r.GetNbConstraints())
			p.Initialize(r, commons)
		} else {
			progress.say("reading phase 2 contribution %d", n)
			if err := readObject(contributionFile(dir, 2, n), &p); err != nil {
				return err
			}
		}
		progress.say("contributing to phase 2")
		p.Contribute()
		return writeObject(contributionFile(dir, 2, n+1), &p)
	}
	return fmt.Errorf("coverage: the ceremony has phases 1 and 2, not %d", phase)
}

// sealedPhase1 verifies phase 1's contributions and returns the parameters its beacon seals.
func sealedPhase1(dir string, progress Progress) (*cs.R1CS, *mpcsetup.SrsCommons, error) {
	r, domain, err := compiledR1CS()
	if err != nil {
		return nil, nil, err
	}
	beacon, err := readBeacon(dir, phase1Beacon)
	if err != nil {
		return nil, nil, err
	}
	n := contributions(dir, 1)
	if n == 0 {
		return nil, nil, errors.New("coverage: phase 1 has no contribution")
	}
	ps := make([]*mpcsetup.Phase1, n)
	for i := range ps {
		ps[i] = new(mpcsetup.Phase1)
		if err := readObject(contributionFile(dir, 1, i+1), ps[i]); err != nil {
			return nil, nil, err
		}
	}
	progress.say("verifying %d phase 1 contributions", n)
	commons, err := mpcsetup.VerifyPhase1(domain, beacon, ps...)
	if err != nil {
		return nil, nil, fmt.Errorf("coverage: phase 1 transcript: %w", err)
	}
	return r, &commons, nil
}

// Seal ends a phase with a public random beacon, chosen after its last contribution (the
// beacon's value must not be known to any contributor beforehand). Sealing phase 2 writes the
// keys.
func Seal(dir string, phase int, beacon []byte, progress Progress) error {
	if len(beacon) < 16 {
		return errors.New("coverage: a beacon is at least 16 bytes")
	}
	name := map[int]string{1: phase1Beacon, 2: phase2Beacon}[phase]
	if name == "" {
		return fmt.Errorf("coverage: the ceremony has phases 1 and 2, not %d", phase)
	}
	if contributions(dir, phase) == 0 {
		return fmt.Errorf("coverage: phase %d has no contribution to seal", phase)
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
		return fmt.Errorf("coverage: phase %d is sealed already", phase)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, name), []byte(hex.EncodeToString(beacon)+"\n"), 0o644); err != nil {
		return err
	}
	if phase == 1 {
		return nil
	}
	k, err := replay(dir, progress)
	if err != nil {
		os.Remove(filepath.Join(dir, name))
		return err
	}
	if err := writeObject(filepath.Join(dir, ProvingKeyFile), k.PK); err != nil {
		return err
	}
	return writeObject(filepath.Join(dir, VerifyingKeyFile), k.VK)
}

// replay verifies the whole transcript and derives the keys from it.
func replay(dir string, progress Progress) (*Keys, error) {
	r, commons, err := sealedPhase1(dir, progress)
	if err != nil {
		return nil, err
	}
	beacon, err := readBeacon(dir, phase2Beacon)
	if err != nil {
		return nil, err
	}
	n := contributions(dir, 2)
	if n == 0 {
		return nil, errors.New("coverage: phase 2 has no contribution")
	}
	ps := make([]*mpcsetup.Phase2, n)
	for i := range ps {
		ps[i] = new(mpcsetup.Phase2)
		if err := readObject(contributionFile(dir, 2, i+1), ps[i]); err != nil {
			return nil, err
		}
	}
	progress.say("verifying %d phase 2 contributions and deriving the keys", n)
	pk, vk, err := mpcsetup.VerifyPhase2(r, commons, beacon, ps...)
	if err != nil {
		return nil, fmt.Errorf("coverage: phase 2 transcript: %w", err)
	}
	return &Keys{CS: r, PK: pk, VK: vk}, nil
}

// VerifyCeremony checks every contribution of the transcript in dir, derives the keys from it
// and checks that they are, byte for byte, the keys the directory holds. It returns their hashes.
func VerifyCeremony(dir string, progress Progress) (KeyHashes, error) {
	k, err := replay(dir, progress)
	if err != nil {
		return KeyHashes{}, err
	}
	derived, err := k.Hashes()
	if err != nil {
		return KeyHashes{}, err
	}
	held, err := HashKeyFiles(dir)
	if err != nil {
		return KeyHashes{}, err
	}
	if held != derived {
		return KeyHashes{}, errors.New("coverage: the keys in the directory are not the ones its transcript derives")
	}
	return derived, nil
}

// KeyHashes names a pair of circuit keys: SHA-256 of each key's encoding, in hex. Genesis holds
// them, and a node refuses to start with other keys.
type KeyHashes struct {
	ProvingKey   string `json:"proving_key_sha256"`
	VerifyingKey string `json:"verifying_key_sha256"`
}

func hashOf(v io.WriterTo) (string, error) {
	h := sha256.New()
	if _, err := v.WriteTo(h); err != nil {
		return "", fmt.Errorf("coverage: encode a key: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Hashes returns the hashes of k's keys.
func (k *Keys) Hashes() (KeyHashes, error) {
	pk, err := hashOf(k.PK)
	if err != nil {
		return KeyHashes{}, err
	}
	vk, err := hashOf(k.VK)
	return KeyHashes{ProvingKey: pk, VerifyingKey: vk}, err
}

// HashKeyFiles returns the hashes of the key files in dir.
func HashKeyFiles(dir string) (KeyHashes, error) {
	var out KeyHashes
	for _, f := range []struct {
		name string
		to   *string
	}{{ProvingKeyFile, &out.ProvingKey}, {VerifyingKeyFile, &out.VerifyingKey}} {
		raw, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return KeyHashes{}, fmt.Errorf("coverage: %w", err)
		}
		sum := sha256.Sum256(raw)
		*f.to = hex.EncodeToString(sum[:])
	}
	return out, nil
}

// LoadKeys reads keys written by a ceremony, checking them against the hashes genesis names.
func LoadKeys(provingKey, verifyingKey []byte, want KeyHashes) (*Keys, error) {
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	if sum(verifyingKey) != want.VerifyingKey {
		return nil, errors.New("coverage: the verifying key is not the one genesis names")
	}
	if provingKey != nil && sum(provingKey) != want.ProvingKey {
		return nil, errors.New("coverage: the proving key is not the one genesis names")
	}
	ccs, err := Compile()
	if err != nil {
		return nil, err
	}
	k := &Keys{CS: ccs, VK: groth16.NewVerifyingKey(ecc.BN254)}
	if _, err := k.VK.ReadFrom(bytes.NewReader(verifyingKey)); err != nil {
		return nil, fmt.Errorf("coverage: verifying key: %w", err)
	}
	if provingKey != nil {
		// The hash matched the ceremony's output, whose points were checked when it was made.
		k.PK = groth16.NewProvingKey(ecc.BN254)
		if _, err := k.PK.UnsafeReadFrom(bytes.NewReader(provingKey)); err != nil {
			return nil, fmt.Errorf("coverage: proving key: %w", err)
		}
	}
	return k, nil
}
