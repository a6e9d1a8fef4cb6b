package tx_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/tx"
)

// envelopeJSON writes an envelope by hand, so that tests control every byte.
func envelopeJSON(body, pub, sig string) []byte {
	return []byte(`{"body":"` + body + `","pub_key":"` + pub + `","sig":"` + sig + `"}`)
}

// signBody signs exact body bytes and returns the canonical envelope.
func signBody(t *testing.T, k ed25519.PrivateKey, body string) []byte {
	t.Helper()
	raw, err := json.Marshal(tx.Envelope{Body: []byte(body), PubKey: k.Public().(ed25519.PublicKey), Sig: ed25519.Sign(k, []byte(body))})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Finding 9: re-encoding a signed envelope (order, whitespace, base64 variants) gave a new tx hash
// for the same signed body. Only the canonical encoding (what tx.Sign writes) decodes now.
func TestAttackTxHashMalleability(t *testing.T) {
	k := key()
	addr := tx.AddressOf(k.Public().(ed25519.PublicKey))
	raw, err := tx.Sign(k, "chain", addr, 3, "identity/register", map[string]string{"name": "x"})
	if err != nil {
		t.Fatal(err)
	}
	good, err := tx.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.StdEncoding.EncodeToString
	body, pub, sig := enc(good.Envelope.Body), enc(good.PubKey), enc(good.Sig)
	if !bytes.Equal(envelopeJSON(body, pub, sig), raw) {
		t.Fatalf("test assumption: hand-written envelope differs from tx.Sign's:\n%s\n%s", envelopeJSON(body, pub, sig), raw)
	}
	// Flip the low bits of the last base64 character before the padding: decoders that ignore
	// non-zero trailing bits give the same bytes.
	trailing := func(s string) string {
		i := strings.IndexByte(s, '=') - 1
		const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
		return s[:i] + string(alpha[strings.IndexByte(alpha, s[i])^1]) + s[i+1:]
	}
	variants := map[string][]byte{
		"field order":            []byte(`{"pub_key":"` + pub + `","body":"` + body + `","sig":"` + sig + `"}`),
		"whitespace":             []byte(`{ "body": "` + body + `", "pub_key": "` + pub + `", "sig": "` + sig + `" }`),
		"trailing newline":       append(append([]byte{}, raw...), '\n'),
		"leading space":          append([]byte{' '}, raw...),
		"base64 with \\r\\n":     envelopeJSON(body[:8]+`\r\n`+body[8:], pub, sig),
		"base64 with raw \\r":    envelopeJSON(body[:8]+"\r"+body[8:], pub, sig),
		"sig with \\n":           envelopeJSON(body, pub, sig[:4]+`\n`+sig[4:]),
		"pub_key with \\n":       envelopeJSON(body, pub[:4]+`\n`+pub[4:], sig),
		"unicode escape":         envelopeJSON(`\u00`+hex2(body[0])+body[1:], pub, sig),
		"escape in sig":          envelopeJSON(body, pub, `\u00`+hex2(sig[0])+sig[1:]),
		"non-zero trailing bits": envelopeJSON(body, pub, trailing(sig)),
		"duplicate field":        []byte(`{"body":"` + body + `","body":"` + body + `","pub_key":"` + pub + `","sig":"` + sig + `"}`),
		"upper-case field":       []byte(`{"Body":"` + body + `","pub_key":"` + pub + `","sig":"` + sig + `"}`),
	}
	for name, v := range variants {
		t.Run(name, func(t *testing.T) {
			if bytes.Equal(v, raw) {
				t.Fatal("variant equals the canonical bytes")
			}
			if _, err := tx.Decode(v); codes.Of(err) != codes.Malformed {
				t.Fatalf("re-encoded envelope: err = %v, want malformed", err)
			}
		})
	}

	// A body that is not encoding/json of its own decoding is refused even when correctly
	// signed: one signed body, one encoding, one hash.
	canonical := `{"chain_id":"c","signer":"` + string(addr) + `","nonce":1,"type":"t","msg":{"a":1}}`
	if _, err := tx.Decode(signBody(t, k, canonical)); err != nil {
		t.Fatalf("canonical body refused: %v", err)
	}
	for name, b := range map[string]string{
		"body whitespace":  `{"chain_id":"c", "signer":"` + string(addr) + `","nonce":1,"type":"t","msg":{"a":1}}`,
		"msg whitespace":   `{"chain_id":"c","signer":"` + string(addr) + `","nonce":1,"type":"t","msg":{ "a": 1 }}`,
		"field order":      `{"signer":"` + string(addr) + `","chain_id":"c","nonce":1,"type":"t","msg":{"a":1}}`,
		"escaped string":   `{"chain_id":"\u0063","signer":"` + string(addr) + `","nonce":1,"type":"t","msg":{"a":1}}`,
		"unescaped <":      `{"chain_id":"c","signer":"` + string(addr) + `","nonce":1,"type":"t","msg":{"a":"<"}}`,
		"upper-case field": `{"Chain_ID":"c","signer":"` + string(addr) + `","nonce":1,"type":"t","msg":{"a":1}}`,
		"nonce 1.0":        `{"chain_id":"c","signer":"` + string(addr) + `","nonce":1e0,"type":"t","msg":{"a":1}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := tx.Decode(signBody(t, k, b)); codes.Of(err) != codes.Malformed {
				t.Fatalf("non-canonical body: err = %v, want malformed", err)
			}
		})
	}

	// Whatever tx.Sign produces is canonical, whatever the message holds.
	for i, msg := range []any{
		map[string]any{"html": "<a href='x'>&</a>", "ls": "\u2028\u2029", "u": "é😀", "n": []int{1, 2}, "nil": nil},
		struct {
			B []byte `json:"b"`
			R json.RawMessage
		}{B: []byte{0, 1, 2, 255}, R: json.RawMessage(" { \"x\" : [ 1 , 2 ] } ")},
		"just a string", 42, []string{},
	} {
		raw, err := tx.Sign(k, "chain", addr, uint64(i), "any/type", msg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Decode(raw); err != nil {
			t.Errorf("tx.Sign output %d refused: %v", i, err)
		}
	}
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

// Finding 11: duplicate keys in a signed body were accepted and the last one won, so two decoders
// (or a reviewer and the chain) could read different values from the same signed bytes. Any
// duplicate key, at any depth and in the case-insensitive sense encoding/json matches fields
// with, is refused.
func TestAttackDuplicateJSONKeys(t *testing.T) {
	k := key()
	addr := string(tx.AddressOf(k.Public().(ed25519.PublicKey)))
	head := `{"chain_id":"c","signer":"` + addr + `","nonce":1,"type":"identity/register","msg":`
	for name, msg := range map[string]string{
		"top of msg":        `{"role":"patient","role":"registrar"}`,
		"case-insensitive":  `{"role":"patient","Role":"registrar"}`,
		"unicode fold":      `{"size":1,"ſize":2}`, // U+017F folds to s, as encoding/json matches names
		"escaped duplicate": `{"role":"patient","\u0072ole":"registrar"}`,
		"nested object":     `{"a":{"b":1,"c":{"d":1,"d":2}}}`,
		"object in array":   `{"a":[1,{"x":1},{"y":1,"y":2}]}`,
		"deep":              strings.Repeat(`{"a":`, 40) + `{"k":1,"k":1}` + strings.Repeat(`}`, 40),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tx.Decode(signBody(t, k, head+msg+`}`))
			if codes.Of(err) != codes.Malformed || !strings.Contains(err.Error(), "duplicate") {
				t.Fatalf("err = %v, want malformed duplicate key", err)
			}
		})
	}
	// The same key in different objects, or as a value, is fine.
	for _, msg := range []string{
		`{"a":{"a":"a"},"b":{"a":["a",{"a":1}]}}`,
		`[{"k":1},{"k":1}]`,
		`{"a":"b","b":"a","A1":1,"a2":2}`,
	} {
		if _, err := tx.Decode(signBody(t, k, head+msg+`}`)); err != nil {
			t.Errorf("msg %s refused: %v", msg, err)
		}
	}
	// Duplicates in the body itself.
	dup := `{"chain_id":"c","signer":"` + addr + `","nonce":1,"nonce":2,"type":"t","msg":{}}`
	if _, err := tx.Decode(signBody(t, k, dup)); codes.Of(err) != codes.Malformed {
		t.Fatalf("duplicate nonce: err = %v, want malformed", err)
	}
	if err := tx.CheckDuplicateKeys([]byte(`{"a":1,"b":[{"a":1}],"c":{}}`)); err != nil {
		t.Fatal(err)
	}
	if err := tx.CheckDuplicateKeys([]byte(`{"a":1,"b":2,"A":3}`)); err == nil {
		t.Fatal("case-folded duplicate not found")
	}
}
