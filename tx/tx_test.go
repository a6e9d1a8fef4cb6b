package tx_test

import (
	"bytes"
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

// FuzzDecode: no input panics, and whatever decodes re-verifies consistently, is the canonical
// encoding of its envelope and body (one signed body, one hash) and has no duplicate keys.
func FuzzDecode(f *testing.F) {
	k := key()
	addr := tx.AddressOf(k.Public().(ed25519.PublicKey))
	good, _ := tx.Sign(k, "c", addr, 1, "identity/register", map[string]int{"a": 1})
	f.Add(good)
	nested, _ := tx.Sign(k, "c", addr, 2, "consent/grant", map[string]any{"a": []any{map[string]int{"b": 1, "c": 2}}, "d": map[string]string{"e": "<&>"}})
	f.Add(nested)
	f.Add(bytes.Replace(good, []byte(`","pub_key"`), []byte(`\r\n","pub_key"`), 1))
	dupBody := []byte(`{"chain_id":"c","signer":"` + string(addr) + `","nonce":0,"type":"t","msg":{"a":{"b":1,"b":2}}}`)
	dup, _ := json.Marshal(tx.Envelope{Body: dupBody, PubKey: k.Public().(ed25519.PublicKey), Sig: ed25519.Sign(k, dupBody)})
	f.Add(dup)
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
		if env, _ := json.Marshal(&d.Envelope); !bytes.Equal(env, raw) {
			t.Fatalf("accepted a non-canonical envelope %q", raw)
		}
		if body, _ := json.Marshal(&d.Body); !bytes.Equal(body, d.Envelope.Body) {
			t.Fatalf("accepted a non-canonical body %q", d.Envelope.Body)
		}
		if n, uniq := keyCounts(t, d.Envelope.Body); n != uniq {
			t.Fatalf("accepted a body with duplicate keys %q", d.Envelope.Body)
		}
		_ = d.Verify()
	})
}

// FuzzCheckDuplicateKeys: no input panics, and on valid JSON it agrees with an independent
// oracle for exact duplicates (decoding into maps keeps one value per distinct key).
func FuzzCheckDuplicateKeys(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `{"a":[{"b":1},{"b":1}]}`, `[{"x":{"y":1,"y":1}}]`, `{"a":1,"A":1}`, `"x"`, `{"a":`, `{"a" 1}`, `[1,]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		err := tx.CheckDuplicateKeys(raw)
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return
		}
		if n, uniq := keyCounts(t, raw); n != uniq && err == nil {
			t.Fatalf("missed a duplicate key in %q", raw)
		}
	})
}

// keyCounts returns the number of object keys in one JSON value as written, and as kept by
// decoding into maps (which drops exact duplicates).
func keyCounts(t *testing.T, raw []byte) (written, kept int) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	var count func(any) int
	count = func(v any) int {
		n := 0
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				n += 1 + count(e)
			}
		case []any:
			for _, e := range x {
				n += count(e)
			}
		}
		return n
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var inObj []bool
	wantKey := false
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if len(inObj) > 0 && inObj[len(inObj)-1] && wantKey {
			if _, ok := tok.(string); ok {
				written++
				wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			inObj = append(inObj, true)
			wantKey = true
		case json.Delim('['):
			inObj = append(inObj, false)
		case json.Delim('}'), json.Delim(']'):
			inObj = inObj[:len(inObj)-1]
			wantKey = len(inObj) > 0 && inObj[len(inObj)-1]
		default:
			wantKey = len(inObj) > 0 && inObj[len(inObj)-1]
		}
	}
	return written, count(v)
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
