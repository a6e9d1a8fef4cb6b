package seal_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"

	"lukechampine.com/blake3"

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

// commitmentContext is the BLAKE3 derive_key context of the commitment, as the package
// documentation states it: a test's own copy, so a change to seal.go's has to change this too.
const commitmentContext = "medchain 2026-11-22 seal record plaintext commitment v2"

// wantCommitment computes the documented commitment, keyed_hash(derive_key(context, salt),
// plaintext), with lukechampine.com/blake3: an implementation independent of the one Seal uses
// (github.com/zeebo/blake3), so a fault in either shows.
func wantCommitment(salt, plaintext []byte) (c [32]byte) {
	var k [32]byte
	blake3.DeriveKey(k[:], commitmentContext, salt)
	h := blake3.New(32, k[:])
	h.Write(plaintext)
	h.Sum(c[:0])
	return c
}

func testGCM(t *testing.T, key []byte) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return gcm
}

// decrypt opens a Sealed ciphertext by hand (nonce || AES-256-GCM(salt || length || plaintext ||
// zeros), context as AAD) and returns salt, plaintext and the padding.
func decrypt(t *testing.T, ct, ctx, key []byte) (salt, plaintext, padding []byte) {
	t.Helper()
	body, err := testGCM(t, key).Open(nil, ct[:12], ct[12:], ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.BigEndian.Uint64(body[seal.SaltBytes:])
	rest := body[seal.SaltBytes+8:]
	return body[:seal.SaltBytes], rest[:n], rest[n:]
}

// encrypt builds a ciphertext by hand: a fresh nonce || AES-256-GCM(salt || length || plaintext ||
// padding), padded to the documented size.
func encrypt(t *testing.T, key, ctx, salt, plaintext []byte) []byte {
	t.Helper()
	return encryptBody(t, key, ctx, salt, uint64(len(plaintext)), plaintext, seal.PaddedSize(len(plaintext)))
}

func encryptBody(t *testing.T, key, ctx, salt []byte, length uint64, plaintext []byte, size int) []byte {
	t.Helper()
	gcm := testGCM(t, key)
	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	body := append(append([]byte(nil), salt...), binary.BigEndian.AppendUint64(nil, length)...)
	body = append(body, plaintext...)
	body = append(body, make([]byte, max(0, size-len(body)))...)
	return gcm.Seal(nonce, nonce, body, ctx)
}

// Seal's outputs are exactly what the package documents, across sizes that take BLAKE3's
// single-block, single-chunk, multi-chunk and parallel-subtree paths: Hash is SHA-256 of the
// ciphertext, the ciphertext decrypts to salt || length || plaintext || zeros of the padded size,
// and Commitment is keyed BLAKE3 under derive_key(context, salt), computed here with another
// BLAKE3 implementation.
func TestSealMatchesDocumentedFormat(t *testing.T) {
	p := newParty(t, "p")
	ctx := []byte("record/9/v1")
	for _, n := range []int{0, 1, 20, 64, 1024, 1025, 2048, 4097, 16<<10 + 1, 1<<20 - 52, 1<<20 - 44, 1<<20 + 7, 8<<20 + 3} {
		doc := make([]byte, n)
		rand.Read(doc)
		s, err := seal.Seal(doc, ctx, []seal.Recipient{p.r})
		if err != nil {
			t.Fatal(err)
		}
		if s.Hash != sha256.Sum256(s.Ciphertext) {
			t.Fatalf("%d bytes: Hash is not SHA-256 of the ciphertext", n)
		}
		if len(s.Ciphertext) != 12+seal.PaddedSize(n)+16 {
			t.Fatalf("%d bytes: ciphertext is %d bytes", n, len(s.Ciphertext))
		}
		salt, pt, pad := decrypt(t, s.Ciphertext, ctx, s.DataKey)
		if !bytes.Equal(pt, doc) || !bytes.Equal(pad, make([]byte, len(pad))) {
			t.Fatalf("%d bytes: ciphertext does not hold salt || length || plaintext || zeros", n)
		}
		if want := wantCommitment(salt, doc); s.Commitment != want {
			t.Fatalf("%d bytes: commitment %x, want keyed BLAKE3 %x", n, s.Commitment, want)
		}
		if v1 := sha256.Sum256(append(append([]byte(nil), salt...), doc...)); s.Commitment == v1 {
			t.Fatalf("%d bytes: commitment is still SHA-256(salt || plaintext)", n)
		}
		if got, err := seal.Open(s.Ciphertext, ctx, s.DataKey, s.Commitment); err != nil || !bytes.Equal(got, doc) {
			t.Fatalf("%d bytes: open: %v", n, err)
		}
	}
}

// Known answers for the commitment, computed with an independent BLAKE3 implementation
// (@noble/hashes 2.4.0: blake3(salt, {context}) then blake3(plaintext, {key})). Open accepts a
// hand-built ciphertext against exactly these commitments.
func TestCommitmentKnownAnswers(t *testing.T) {
	seq := make([]byte, 32)
	for i := range seq {
		seq[i] = byte(i)
	}
	big := make([]byte, 40000)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	for _, c := range []struct {
		name            string
		salt, plaintext []byte
		want            string
	}{
		{"obs", seq, []byte(obs), "d8e2c3df359ac2a5c29f5a3d67ecdcf65d56ff1614c12b700c9b47abc79858af"},
		{"40000 bytes", seq, big, "e60828b57c4f570a1c261d9409cf39a4f4e5e12a64baffd6843aa905c230d16c"},
		{"empty", bytes.Repeat([]byte{0xff}, 32), nil, "7dd047759ed6b09536481a2c7668d827417b154737be49180723f1e38953d568"},
	} {
		var want [32]byte
		hex.Decode(want[:], []byte(c.want))
		if got := wantCommitment(c.salt, c.plaintext); got != want {
			t.Fatalf("%s: blake3 gives %x, independent implementation %x", c.name, got, want)
		}
		key := make([]byte, seal.KeyBytes)
		rand.Read(key)
		ctx := []byte("record/kat/v1")
		ct := encrypt(t, key, ctx, c.salt, c.plaintext)
		if got, err := seal.Open(ct, ctx, key, want); err != nil || !bytes.Equal(got, c.plaintext) {
			t.Fatalf("%s: Open rejects the known-answer commitment: %v", c.name, err)
		}
		want[31] ^= 0x80
		if _, err := seal.Open(ct, ctx, key, want); !errors.Is(err, seal.ErrOpen) {
			t.Fatalf("%s: Open accepts a commitment with its last bit flipped", c.name)
		}
	}
}

// The commitment check is what rejects these: each ciphertext is a valid AES-GCM encryption
// under the record's key and context (so GCM alone accepts it), but of another salt or another
// plaintext than the on-chain commitment was made for.
func TestOpenChecksCommitment(t *testing.T) {
	p := newParty(t, "p")
	ctx := []byte("record/5/v2")
	s, err := seal.Seal([]byte(obs), ctx, []seal.Recipient{p.r})
	if err != nil {
		t.Fatal(err)
	}
	salt, pt, _ := decrypt(t, s.Ciphertext, ctx, s.DataKey)
	otherSalt := append([]byte(nil), salt...)
	otherSalt[0] ^= 1
	otherDoc := bytes.Replace(pt, []byte("6.1"), []byte("9.1"), 1)

	// Control: re-encrypting the same salt and plaintext under a fresh nonce still opens, so the
	// failures below come from what was changed, not from how the ciphertexts were built.
	if got, err := seal.Open(encrypt(t, s.DataKey, ctx, salt, pt), ctx, s.DataKey, s.Commitment); err != nil || string(got) != obs {
		t.Fatalf("re-encrypted record does not open: %v", err)
	}
	for name, ct := range map[string][]byte{
		"wrong salt":      encrypt(t, s.DataKey, ctx, otherSalt, pt),
		"wrong plaintext": encrypt(t, s.DataKey, ctx, salt, otherDoc),
		"no plaintext":    encrypt(t, s.DataKey, ctx, salt, nil),
	} {
		if _, err := seal.Open(ct, ctx, s.DataKey, s.Commitment); !errors.Is(err, seal.ErrOpen) {
			t.Fatalf("%s: opened against the original commitment: %v", name, err)
		}
	}
	// A key-commitment attack: another data key whose ciphertext carries a different plaintext
	// does not open against the original commitment either.
	k2 := make([]byte, seal.KeyBytes)
	rand.Read(k2)
	if _, err := seal.Open(encrypt(t, k2, ctx, salt, otherDoc), ctx, k2, s.Commitment); !errors.Is(err, seal.ErrOpen) {
		t.Fatal("a second key's plaintext opened against the first one's commitment")
	}
	// The retired v1 commitment, SHA-256(salt || plaintext), is not accepted.
	v1 := sha256.Sum256(append(append([]byte(nil), salt...), pt...))
	if _, err := seal.Open(s.Ciphertext, ctx, s.DataKey, v1); !errors.Is(err, seal.ErrOpen) {
		t.Fatal("opened against a SHA-256 (v1) commitment")
	}
	// Every single-bit change of the commitment fails.
	for i := range 256 {
		c := s.Commitment
		c[i/8] ^= 1 << (i % 8)
		if _, err := seal.Open(s.Ciphertext, ctx, s.DataKey, c); !errors.Is(err, seal.ErrOpen) {
			t.Fatalf("opened with commitment bit %d flipped", i)
		}
	}
}

// Any change to the ciphertext (nonce, salt, body or tag bytes), a truncation, the wrong key or
// the wrong context fails, for a bulk record as for a small one.
func TestOpenRejectsTampering(t *testing.T) {
	p := newParty(t, "p")
	ctx := []byte("record/6/v1")
	doc := make([]byte, 256<<10)
	rand.Read(doc)
	s, err := seal.Seal(doc, ctx, []seal.Recipient{p.r})
	if err != nil {
		t.Fatal(err)
	}
	n := len(s.Ciphertext)
	for _, i := range []int{0, 11, 12, 12 + seal.SaltBytes - 1, 12 + seal.SaltBytes, n / 2, n - 17, n - 1} {
		bad := append([]byte(nil), s.Ciphertext...)
		bad[i] ^= 0x01
		if _, err := seal.Open(bad, ctx, s.DataKey, s.Commitment); !errors.Is(err, seal.ErrOpen) {
			t.Fatalf("opened with byte %d of %d flipped", i, n)
		}
	}
	for _, l := range []int{0, 12, 12 + seal.SaltBytes, 12 + seal.SaltBytes + 8 + 16, n - 1} {
		if _, err := seal.Open(s.Ciphertext[:l], ctx, s.DataKey, s.Commitment); !errors.Is(err, seal.ErrOpen) {
			t.Fatalf("opened truncated to %d bytes", l)
		}
	}
	wrongKey := append([]byte(nil), s.DataKey...)
	wrongKey[0] ^= 1
	if _, err := seal.Open(s.Ciphertext, ctx, wrongKey, s.Commitment); !errors.Is(err, seal.ErrOpen) {
		t.Fatal("opened with a wrong data key")
	}
	if _, err := seal.Open(s.Ciphertext, ctx, s.DataKey[:16], s.Commitment); !errors.Is(err, seal.ErrOpen) {
		t.Fatal("opened with a short data key")
	}
	for _, c := range [][]byte{nil, []byte("record/6/v2"), []byte("record/6/v1\x00")} {
		if _, err := seal.Open(s.Ciphertext, c, s.DataKey, s.Commitment); !errors.Is(err, seal.ErrOpen) {
			t.Fatalf("opened under context %q", c)
		}
	}
	if got, err := seal.Open(s.Ciphertext, ctx, s.DataKey, s.Commitment); err != nil || !bytes.Equal(got, doc) {
		t.Fatalf("untampered record does not open: %v", err)
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

// Records of different lengths in one size class have ciphertexts of one size: every record up
// to ~4 KiB alike, and above it the Padmé classes (at most 12 % larger than the body). Sizes
// grow with the plaintext and never shrink.
func TestCiphertextSizesArePadded(t *testing.T) {
	p := newParty(t, "p")
	size := func(n int) int {
		s, err := seal.Seal(make([]byte, n), []byte("ctx"), []seal.Recipient{p.r})
		if err != nil {
			t.Fatal(err)
		}
		return len(s.Ciphertext)
	}
	if a, b := size(0), size(4096-seal.SaltBytes-8); a != b || a != 12+seal.MinPaddedBody+16 {
		t.Fatalf("small records: %d and %d bytes", a, b)
	}
	if a, b := size(100_000), size(100_300); a != b {
		t.Fatalf("100,000 and 100,300 bytes seal to %d and %d bytes", a, b)
	}
	prev := 0
	for n := 0; n < 5<<20; n = n*5/4 + 1000 {
		got := seal.PaddedSize(n)
		body := seal.SaltBytes + 8 + n
		if got < body || got < prev || (body > seal.MinPaddedBody && float64(got) > 1.12*float64(body)) {
			t.Fatalf("PaddedSize(%d) = %d (body %d, previous %d)", n, got, body, prev)
		}
		prev = got
	}
}

// TestAttackPaddingTampered: a body whose length field points past the body, or whose padding
// is not zero, is refused even though the AEAD and the commitment would hold.
func TestAttackPaddingTampered(t *testing.T) {
	key := make([]byte, seal.KeyBytes)
	rand.Read(key)
	salt := make([]byte, seal.SaltBytes)
	rand.Read(salt)
	doc := []byte(obs)
	c := wantCommitment(salt, doc)
	ctx := []byte("record/pad/v1")
	size := seal.PaddedSize(len(doc))
	if got, err := seal.Open(encryptBody(t, key, ctx, salt, uint64(len(doc)), doc, size), ctx, key, c); err != nil || string(got) != obs {
		t.Fatalf("control: %v", err)
	}
	for name, ct := range map[string][]byte{
		"length past the body": encryptBody(t, key, ctx, salt, uint64(size), doc, size),
		"huge length":          encryptBody(t, key, ctx, salt, 1<<63, doc, size),
		"non-zero padding":     encryptBody(t, key, ctx, salt, uint64(len(doc)), append(append([]byte(nil), doc...), 1), size),
		"no room for length":   testGCM(t, key).Seal(make([]byte, 12), make([]byte, 12), salt, ctx),
	} {
		if _, err := seal.Open(ct, ctx, key, c); !errors.Is(err, seal.ErrOpen) {
			t.Fatalf("%s: opened: %v", name, err)
		}
	}
}
