package tx_test

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/tx"
)

// sameDecode requires tx.Decode and the reference legacyDecode to agree on raw: both refuse it
// with the same code, or both accept it as the same tx.
func sameDecode(t *testing.T, raw []byte) {
	t.Helper()
	got, err := tx.Decode(raw)
	want, werr := legacyDecode(raw)
	if (err == nil) != (werr == nil) || codes.Of(err) != codes.Of(werr) {
		t.Fatalf("%q:\nDecode: %v\nlegacy: %v", raw, err, werr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: decoded %+v, legacy %+v", raw, got, want)
	}
}

// envelopeOf wraps body bytes in a canonical envelope (the signature is not checked by Decode).
func envelopeOf(body []byte) []byte {
	raw, _ := json.Marshal(tx.Envelope{Body: body, PubKey: key().Public().(ed25519.PublicKey), Sig: make([]byte, ed25519.SignatureSize)})
	return raw
}

var bodyHead = `{"chain_id":"c","signer":"` + string(tx.AddressOf(key().Public().(ed25519.PublicKey))) + `","nonce":1,"type":"t","msg":`

// Bodies and envelopes where the faster decoding could plausibly differ from encoding/json's:
// UTF-8 and escapes, key folding, nesting depth, null and empty values, number forms.
var decodeEdgeCases = []string{
	`{}`, `{"a":null}`, `null`, `[]`, `"x"`, `0`,
	`{"k":"` + "\xff\xfe" + `"}`,               // invalid UTF-8 in a value: encoding/json accepts it
	`{"` + "\xff" + `":1,"` + "\xfe" + `":2}`,  // both keys read as U+FFFD: a duplicate
	`{"\ud800":1,"\udbff":2}`,                  // lone surrogates: both U+FFFD
	`{"\ud800\udc00":1,"𐀀":2}`,                 // a surrogate pair and its character
	`{"\ud800\u0041":1,"` + "\ufffd" + `A":2}`, // a broken pair: U+FFFD then A
	`{"a":1,"\u0041":2}`,                       // escaped, folded
	`{"K":1,"` + "\u212a" + `":2}`,             // KELVIN SIGN folds to k
	`{"ß":1,"ẞ":2}`,                            // sharp s and its capital
	`{"\u003c":1,"<":2}`,                       // HTML escape
	`{"a":"\u2028"}`, "{\"a\":\"\u2028\"}",     // U+2028 escaped and raw: only one is canonical
	`{"a":1e2,"b":-0,"c":1.5E-3,"d":12345678901234567890123}`,
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":+1}`, `{"a":"\x01"}`, `{"a":"\q"}`,
	`{"a":[1,2,{"b":[{"c":{}}]}]}`, `{"a":1,}`, `[1,]`, `{"a" 1}`, `{"a":1}}`, `{"a":1} `,
	strings.Repeat(`[`, 9999) + `{"k":1,"k":2}` + strings.Repeat(`]`, 9999),
	strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000),
	strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001),
	manyKeys(40, `"K0":1`), manyKeys(40, ""), manyKeys(17, `"k16":1`),
}

// manyKeys is an object with n distinct keys, then extra members.
func manyKeys(n int, extra string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	if extra == "" {
		return strings.TrimSuffix(b.String(), ",") + "}"
	}
	return b.String() + extra + "}"
}

func TestDecodeMatchesLegacy(t *testing.T) {
	for i, msg := range decodeEdgeCases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			body := []byte(bodyHead + msg + `}`)
			sameDecode(t, envelopeOf(body))
			if err, werr := tx.CheckDuplicateKeys([]byte(msg)), legacyCheckDuplicateKeys([]byte(msg)); json.Valid([]byte(msg)) && (err == nil) != (werr == nil) {
				t.Fatalf("%q: CheckDuplicateKeys %v, legacy %v", msg, err, werr)
			}
		})
	}
	// Bodies that are not canonical, or not bodies.
	for _, body := range []string{
		`{"chain_id":"c","msg":{}}`, `{"Chain_ID":"c"}`, bodyHead + `null}`, bodyHead + `{}}`,
		bodyHead + `{}` + `,"x":1}`, bodyHead + `{} }`, bodyHead + `{}}{}`, bodyHead + `{}}` + "\n",
		strings.Replace(bodyHead, `"nonce":1`, `"nonce":1.0`, 1) + `{}}`,
		strings.Replace(bodyHead, `"nonce":1`, `"nonce":1e0`, 1) + `{}}`,
		strings.Replace(bodyHead, `"nonce":1`, `"nonce":18446744073709551616`, 1) + `{}}`,
		strings.Replace(bodyHead, `"chain_id":"c"`, `"chain_id":"\u0063"`, 1) + `{}}`,
		strings.Replace(bodyHead, `"chain_id":"c"`, `"chain_id":"`+"\xff"+`"`, 1) + `{}}`,
		strings.Replace(bodyHead, `"chain_id":"c"`, `"chain_id":"\ufffd"`, 1) + `{}}`,
		strings.Replace(bodyHead, `"chain_id":"c"`, `"chain_id":"<"`, 1) + `{}}`,
		strings.Replace(bodyHead, `"chain_id":"c"`, `"chain_id":"\u003c"`, 1) + `{}}`,
		strings.Replace(bodyHead, `"type":"t"`, `"type":"t","type":"t"`, 1) + `{}}`,
		"", " ", "{",
	} {
		sameDecode(t, envelopeOf([]byte(body)))
	}
	// Envelopes.
	good := envelopeOf([]byte(bodyHead + `{}}`))
	sameDecode(t, good)
	for _, raw := range []string{
		`{"body":null,"pub_key":null,"sig":null}`, `{}`, `null`, `[]`, ``,
		strings.Replace(string(good), `"sig"`, `"Sig"`, 1),
		strings.Replace(string(good), `"sig":"`, `"sig":"\u0041`, 1),
		strings.Replace(string(good), `=="}`, `"}`, 1),
		string(good) + ` `, `{"body":"e30=",` + string(good[1:]),
	} {
		sameDecode(t, []byte(raw))
	}
}

// FuzzDecodeMatchesLegacy: tx.Decode accepts exactly what the old decoding did, as the same tx.
// The input is a body, wrapped in a canonical envelope, or with a leading '!' a whole envelope.
func FuzzDecodeMatchesLegacy(f *testing.F) {
	for _, msg := range decodeEdgeCases[:len(decodeEdgeCases)-6] {
		f.Add([]byte(bodyHead + msg + `}`))
	}
	f.Add(append([]byte("!"), envelopeOf([]byte(bodyHead+`{}}`))...))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 0 && in[0] == '!' {
			sameDecode(t, in[1:])
			return
		}
		sameDecode(t, envelopeOf(in))
	})
}

// FuzzCheckDuplicateKeysMatchesLegacy: on any JSON value encoding/json accepts, the new search
// finds a duplicate exactly when the old one did.
func FuzzCheckDuplicateKeysMatchesLegacy(f *testing.F) {
	for _, s := range decodeEdgeCases[:len(decodeEdgeCases)-6] {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		err := tx.CheckDuplicateKeys(raw)
		if !json.Valid(raw) {
			if err == nil {
				t.Fatalf("%q: invalid JSON accepted", raw)
			}
			return
		}
		if werr := legacyCheckDuplicateKeys(raw); (err == nil) != (werr == nil) {
			t.Fatalf("%q: CheckDuplicateKeys %v, legacy %v", raw, err, werr)
		}
	})
}

// A body-sized object with tens of thousands of keys is searched in linear time, and a
// case-folded duplicate at its end is found.
func TestCheckDuplicateKeysHugeObject(t *testing.T) {
	const n = 9000
	obj := manyKeys(n, "")
	dup := manyKeys(n, `"K8999":0`)
	if len(dup) > tx.MaxMsgBytes {
		t.Fatalf("test object is %d bytes, more than a msg", len(dup))
	}
	start := time.Now()
	if err := tx.CheckDuplicateKeys([]byte(obj)); err != nil {
		t.Fatal(err)
	}
	if err := tx.CheckDuplicateKeys([]byte(dup)); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("err = %v, want a duplicate", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}
