package tx_test

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/medchain/medchain/tx"
)

// benchTx is a registration like the ledger benchmark's (bench.RegisterTxs): ~450 bytes.
func benchTx(b *testing.B) []byte {
	b.Helper()
	k := key()
	addr := tx.AddressOf(k.Public().(ed25519.PublicKey))
	raw, err := tx.Sign(k, "medchain-dev", addr, 0, "identity/register", map[string]string{
		"role": "patient", "name": "Bench Patient 12345", "encryption_key": strings.Repeat("A", 43) + "="})
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkDecode is the strict decoding of one tx without its signature check.
func BenchmarkDecode(b *testing.B) {
	raw := benchTx(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tx.Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckDuplicateKeys is the duplicate-key search over one tx's body.
func BenchmarkCheckDuplicateKeys(b *testing.B) {
	d, err := tx.Decode(benchTx(b))
	if err != nil {
		b.Fatal(err)
	}
	body := d.Envelope.Body
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := tx.CheckDuplicateKeys(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeMsg is a module's strict decoding of a registration message.
func BenchmarkDecodeMsg(b *testing.B) {
	d, err := tx.Decode(benchTx(b))
	if err != nil {
		b.Fatal(err)
	}
	var m struct {
		Role          string `json:"role"`
		OrgKind       string `json:"org_kind,omitempty"`
		Name          string `json:"name"`
		EncryptionKey []byte `json:"encryption_key"`
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := tx.DecodeMsg(d.Body.Msg, &m); err != nil {
			b.Fatal(err)
		}
	}
}
