package seal_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"

	zeebo "github.com/zeebo/blake3"
	"lukechampine.com/blake3"

	"github.com/medchain/medchain/seal"
)

// Bulk throughput on an 8 MiB document (b.SetBytes: MB/s). The primitive benchmarks show what
// each pass of Seal costs on its own on this CPU; run them with -cpu 1 for per-core figures
// (lukechampine.com/blake3's Hasher spreads a large Write over goroutines, so with GOMAXPROCS > 1
// it uses more than one core; github.com/zeebo/blake3, which Seal uses, stays on one).
const bulkBytes = 8 << 20

var sink [32]byte

func bulkDoc() []byte {
	doc := make([]byte, bulkBytes)
	rand.Read(doc)
	return doc
}

// BenchmarkBulkSHA256 is one SHA-256 pass: the ciphertext's hash.
func BenchmarkBulkSHA256(b *testing.B) {
	doc := bulkDoc()
	b.SetBytes(bulkBytes)
	for b.Loop() {
		sink = sha256.Sum256(doc)
	}
}

// BenchmarkBulkAESGCM is AES-256-GCM sealing alone, in place as Seal does it.
func BenchmarkBulkAESGCM(b *testing.B) {
	doc := bulkDoc()
	key := make([]byte, 32)
	rand.Read(key)
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize())
	buf := make([]byte, bulkBytes, bulkBytes+gcm.Overhead())
	copy(buf, doc)
	b.SetBytes(bulkBytes)
	for b.Loop() {
		// Re-encrypting the previous output keeps the buffer hot like Seal's single buffer; the
		// nonce is reused only because nothing here is ever decrypted.
		gcm.Seal(buf[:0], nonce, buf[:bulkBytes], []byte("ctx"))
	}
}

// BenchmarkBulkBLAKE3 is one keyed BLAKE3 pass, the plaintext commitment, with the implementation
// Seal uses (github.com/zeebo/blake3) and with lukechampine.com/blake3, which it used before
// (same outputs: TestSealMatchesDocumentedFormat checks Seal against the latter).
func BenchmarkBulkBLAKE3(b *testing.B) {
	doc := bulkDoc()
	key := make([]byte, 32)
	rand.Read(key)
	b.Run("zeebo", func(b *testing.B) {
		b.SetBytes(bulkBytes)
		for b.Loop() {
			h, _ := zeebo.NewKeyed(key)
			h.Write(doc)
			h.Sum(sink[:0])
		}
	})
	b.Run("lukechampine", func(b *testing.B) {
		b.SetBytes(bulkBytes)
		for b.Loop() {
			h := blake3.New(32, key)
			h.Write(doc)
			h.Sum(sink[:0])
		}
	})
}

// BenchmarkBulkSeal is Seal of an 8 MiB document for one recipient.
func BenchmarkBulkSeal(b *testing.B) {
	p := newParty(b, "p")
	doc := bulkDoc()
	b.SetBytes(bulkBytes)
	for b.Loop() {
		if _, err := seal.Seal(doc, []byte("ctx"), []seal.Recipient{p.r}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBulkOpen is Open (decrypt + commitment check) of an 8 MiB document with its data key
// already unwrapped.
func BenchmarkBulkOpen(b *testing.B) {
	p := newParty(b, "p")
	s, err := seal.Seal(bulkDoc(), []byte("ctx"), []seal.Recipient{p.r})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(bulkBytes)
	for b.Loop() {
		if _, err := seal.Open(s.Ciphertext, []byte("ctx"), s.DataKey, s.Commitment); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommitment compares the commitment's cost by plaintext size: v1, SHA-256(salt ||
// plaintext), against v2, keyed BLAKE3 under derive_key(context, salt), computed as Seal does
// with github.com/zeebo/blake3 (whose hasher costs a 21 KB allocation, visible on small inputs).
func BenchmarkCommitment(b *testing.B) {
	salt := make([]byte, seal.SaltBytes)
	rand.Read(salt)
	for _, n := range []int{1 << 10, 16 << 10, 256 << 10, bulkBytes} {
		doc := make([]byte, n)
		rand.Read(doc)
		b.Run(fmt.Sprintf("v1-sha256/%dKiB", n>>10), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				h := sha256.New()
				h.Write(salt)
				h.Write(doc)
				h.Sum(sink[:0])
			}
		})
		b.Run(fmt.Sprintf("v2-blake3/%dKiB", n>>10), func(b *testing.B) {
			b.SetBytes(int64(n))
			var k [32]byte
			for b.Loop() {
				zeebo.DeriveKey(commitmentContext, salt, k[:])
				h, _ := zeebo.NewKeyed(k[:])
				h.Write(doc)
				h.Sum(sink[:0])
			}
		})
	}
}
