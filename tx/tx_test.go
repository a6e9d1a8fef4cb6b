package tx_test

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/tx"
)

func key() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(make([]byte, 32)) }

func TestSignDecodeVerify(t *testing.T) {
	k := key()
	addr := tx.AddressOf(k.Public().(ed25519.PublicKey))
	raw, err := tx.Sign(k, "chain", addr, 7, "identity/register", map[string]string{"name": "x"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := tx.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if d.Body.ChainID != "chain" || d.Body.Nonce != 7 || d.Body.Signer != addr || string(d.Body.Msg) != `{"name":"x"}` {
		t.Fatalf("decoded %+v", d.Body)
	}
	if err := d.Verify(); err != nil {
		t.Fatal(err)
	}
	d.Sig[0] ^= 1
	if codes.Of(d.Verify()) != codes.BadSignature {
		t.Fatal("flipped signature verified")
	}
}

func TestDecodeRejects(t *testing.T) {
	k := key()
	addr := tx.AddressOf(k.Public().(ed25519.PublicKey))
	body := func(b string) []byte {
		raw, _ := json.Marshal(tx.Envelope{Body: []byte(b), PubKey: k.Public().(ed25519.PublicKey), Sig: ed25519.Sign(k, []byte(b))})
		return raw
	}
	cases := map[string]struct {
		raw  []byte
		want codes.Code
	}{
		"not json":         {[]byte("hello"), codes.Malformed},
		"trailing data":    {append(body(`{"chain_id":"c","signer":"`+string(addr)+`","nonce":0,"type":"t","msg":{}}`), []byte(" {}")...), codes.Malformed},
		"short key":        {[]byte(`{"body":"e30=","pub_key":"AAAA","sig":"` + strings.Repeat("A", 88) + `"}`), codes.Malformed},
		"unknown body key": {body(`{"chain_id":"c","signer":"` + string(addr) + `","nonce":0,"type":"t","msg":{},"x":1}`), codes.Malformed},
		"bad signer":       {body(`{"chain_id":"c","signer":"ZZ","nonce":0,"type":"t","msg":{}}`), codes.Malformed},
		"no msg":           {body(`{"chain_id":"c","signer":"` + string(addr) + `","nonce":0,"type":"t"}`), codes.Malformed},
		"long chain id":    {body(`{"chain_id":"` + strings.Repeat("c", 51) + `","signer":"` + string(addr) + `","nonce":0,"type":"t","msg":{}}`), codes.Malformed},
		"negative nonce":   {body(`{"chain_id":"c","signer":"` + string(addr) + `","nonce":-1,"type":"t","msg":{}}`), codes.Malformed},
		"oversize":         {make([]byte, tx.MaxTxBytes+1), codes.TooLarge},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := tx.Decode(tc.raw); codes.Of(err) != tc.want {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
		})
	}
}

// FuzzDecode: no input panics, and whatever decodes re-verifies consistently.
func FuzzDecode(f *testing.F) {
	k := key()
	addr := tx.AddressOf(k.Public().(ed25519.PublicKey))
	good, _ := tx.Sign(k, "c", addr, 1, "identity/register", map[string]int{"a": 1})
	f.Add(good)
	f.Add([]byte(`{"body":"","pub_key":"","sig":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := tx.Decode(raw)
		if err != nil {
			if codes.Of(err) == codes.Internal || codes.Of(err) == codes.OK {
				t.Fatalf("decode error without a client code: %v", err)
			}
			return
		}
		if d.Body.Signer.Validate() != nil || len(d.PubKey) != ed25519.PublicKeySize {
			t.Fatal("decoded an invalid envelope")
		}
		_ = d.Verify()
	})
}

func BenchmarkDecodeVerify(b *testing.B) {
	k := key()
	addr := tx.AddressOf(k.Public().(ed25519.PublicKey))
	raw, _ := tx.Sign(k, "medchain-dev", addr, 1, "identity/register", map[string]string{"role": "patient", "name": "Bench Patient", "encryption_key": strings.Repeat("A", 44)})
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		d, err := tx.Decode(raw)
		if err != nil || d.Verify() != nil {
			b.Fatal(err)
		}
	}
}
