package seal_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/medchain/medchain/seal"
)

type party struct {
	priv *ecdh.PrivateKey
	r    seal.Recipient
}

func newParty(t testing.TB, id string) party {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return party{priv: priv, r: seal.Recipient{ID: id, PublicKey: priv.PublicKey().Bytes()}}
}

const obs = `{"resourceType":"Observation","status":"final","code":{"text":"HbA1c"},"valueQuantity":{"value":6.1,"unit":"%"}}`

func TestSealOpenPerRecipient(t *testing.T) {
	patient, lab, stranger := newParty(t, "patient"), newParty(t, "lab"), newParty(t, "stranger")
	ctx := []byte("record/42/v1")
	s, err := seal.Seal([]byte(obs), ctx, []seal.Recipient{patient.r, lab.r})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s.Ciphertext, []byte("HbA1c")) || bytes.Contains(s.Keys[0].Wrapped, s.DataKey) {
		t.Fatal("plaintext or data key visible in the sealed output")
	}
	for i, p := range []party{patient, lab} {
		key, err := seal.Unwrap(s.Keys[i].Wrapped, ctx, p.priv)
		if err != nil {
			t.Fatalf("%s unwrap: %v", p.r.ID, err)
		}
		got, err := seal.Open(s.Ciphertext, ctx, key, s.Commitment)
		if err != nil || string(got) != obs {
			t.Fatalf("%s open: %q %v", p.r.ID, got, err)
		}
	}
	// Someone else's key, another record's context, tampering and a wrong commitment all fail.
	if _, err := seal.Unwrap(s.Keys[0].Wrapped, ctx, stranger.priv); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("stranger unwrapped: %v", err)
	}
	if _, err := seal.Unwrap(s.Keys[0].Wrapped, []byte("record/43/v1"), patient.priv); !errors.Is(err, seal.ErrOpen) {
		t.Fatal("wrapped key opened under another record's context")
	}
	key, _ := seal.Unwrap(s.Keys[0].Wrapped, ctx, patient.priv)
	if _, err := seal.Open(s.Ciphertext, []byte("record/43/v1"), key, s.Commitment); !errors.Is(err, seal.ErrOpen) {
		t.Fatal("ciphertext opened under another context")
	}
	bad := append([]byte(nil), s.Ciphertext...)
	bad[len(bad)-1] ^= 1
	if _, err := seal.Open(bad, ctx, key, s.Commitment); !errors.Is(err, seal.ErrOpen) {
		t.Fatal("tampered ciphertext opened")
	}
	wrong := s.Commitment
	wrong[0] ^= 1
	if _, err := seal.Open(s.Ciphertext, ctx, key, wrong); !errors.Is(err, seal.ErrOpen) {
		t.Fatal("opened against a wrong commitment")
	}
}

// Granting an existing record to a new grantee re-wraps its data key; nothing is re-encrypted.
func TestRewrapForNewGrantee(t *testing.T) {
	patient, doctor := newParty(t, "patient"), newParty(t, "doctor")
	ctx := []byte("record/7/v3")
	s, _ := seal.Seal([]byte(obs), ctx, []seal.Recipient{patient.r})
	key, _ := seal.Unwrap(s.Keys[0].Wrapped, ctx, patient.priv)
	w, err := seal.Wrap(key, ctx, doctor.r)
	if err != nil {
		t.Fatal(err)
	}
	dk, err := seal.Unwrap(w.Wrapped, ctx, doctor.priv)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := seal.Open(s.Ciphertext, ctx, dk, s.Commitment); err != nil || string(got) != obs {
		t.Fatalf("doctor open: %v", err)
	}
}

// The same plaintext sealed twice shares nothing: fresh keys and salts, so neither ciphertexts
// nor commitments link records.
func TestSealsAreUnlinkable(t *testing.T) {
	p := newParty(t, "p")
	a, _ := seal.Seal([]byte(obs), nil, []seal.Recipient{p.r})
	b, _ := seal.Seal([]byte(obs), nil, []seal.Recipient{p.r})
	if a.Commitment == b.Commitment || a.Hash == b.Hash || bytes.Equal(a.DataKey, b.DataKey) {
		t.Fatal("two seals of one plaintext are linkable")
	}
}

func TestSealRejectsBadInput(t *testing.T) {
	if _, err := seal.Seal([]byte(obs), nil, nil); err == nil {
		t.Fatal("sealed for nobody")
	}
	if _, err := seal.Seal([]byte(obs), nil, []seal.Recipient{{ID: "x", PublicKey: []byte("short")}}); err == nil {
		t.Fatal("sealed for a malformed key")
	}
	if _, err := seal.Open([]byte("short"), nil, make([]byte, 32), [32]byte{}); !errors.Is(err, seal.ErrOpen) {
		t.Fatal("opened garbage")
	}
}

// BenchmarkSealBulk measures encryption throughput of a 1 MiB document with one recipient
// (b.SetBytes: MB/s).
func BenchmarkSealBulk(b *testing.B) {
	p := newParty(b, "p")
	doc := make([]byte, 1<<20)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := seal.Seal(doc, []byte("ctx"), []seal.Recipient{p.r}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealResource measures a typical ~1 KiB FHIR resource sealed for 3 recipients.
func BenchmarkSealResource(b *testing.B) {
	rs := []seal.Recipient{newParty(b, "a").r, newParty(b, "b").r, newParty(b, "c").r}
	doc := bytes.Repeat([]byte(obs), 8)
	for b.Loop() {
		if _, err := seal.Seal(doc, []byte("ctx"), rs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen measures unwrap + decrypt + commitment check of a ~1 KiB resource.
func BenchmarkOpen(b *testing.B) {
	p := newParty(b, "p")
	s, _ := seal.Seal(bytes.Repeat([]byte(obs), 8), []byte("ctx"), []seal.Recipient{p.r})
	for b.Loop() {
		key, err := seal.Unwrap(s.Keys[0].Wrapped, []byte("ctx"), p.priv)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := seal.Open(s.Ciphertext, []byte("ctx"), key, s.Commitment); err != nil {
			b.Fatal(err)
		}
	}
}
