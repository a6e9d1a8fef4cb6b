// Package tx defines medchain's transaction envelope: the signed body, its size limits, its
// decoding (strict, bounded, fuzzed) and signing. The signature covers the exact body bytes; the
// body is never re-serialized to verify it.
//
// Encodings are canonical: Decode accepts an envelope only in the exact bytes Sign writes
// (encoding/json of the Envelope: fixed field order, no whitespace, standard padded base64), and
// a body only if it is encoding/json of its decoded Body, with no object key (at any depth,
// inside msg too) given twice. So one signed body has exactly one envelope, and one tx hash: a
// relayer cannot re-encode a client's tx into a different hash, and no field can be read
// differently by decoders that keep the first or the last of two duplicate keys.
package tx

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/medchain/medchain/codes"
)

// Limits. Every field of an envelope and body is bounded; messages bound their own fields.
const (
	MaxTxBytes      = 128 << 10 // a whole encoded envelope
	MaxChainIDBytes = 50
	MaxTypeBytes    = 64
	MaxMsgBytes     = MaxTxBytes - 1024
)

// Address identifies an account: the lowercase hex of the first 20 bytes of the SHA-256 of the
// account's first signing key. It survives key rotation.
type Address string

// AddressOf derives the address of a signing public key.
func AddressOf(pub ed25519.PublicKey) Address {
	sum := sha256.Sum256(pub)
	return Address(hex.EncodeToString(sum[:20]))
}

var addressRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Validate reports whether a is a well-formed address.
func (a Address) Validate() error {
	if !addressRE.MatchString(string(a)) {
		return codes.Errorf(codes.Invalid, "address %q is not 40 lowercase hex characters", truncate(string(a)))
	}
	return nil
}

// Body is what a signer signs.
type Body struct {
	ChainID string          `json:"chain_id"`
	Signer  Address         `json:"signer"`
	Nonce   uint64          `json:"nonce"`
	Type    string          `json:"type"`
	Msg     json.RawMessage `json:"msg"`
}

// Envelope carries the exact signed body bytes, the signer's key and the signature.
type Envelope struct {
	Body   []byte            `json:"body"`
	PubKey ed25519.PublicKey `json:"pub_key"`
	Sig    []byte            `json:"sig"`
}

// Tx is a decoded, structurally valid transaction. Its signature is not yet checked: see Verify.
type Tx struct {
	Envelope
	Body Body
	Hash [32]byte // SHA-256 of the raw envelope bytes, as CometBFT hashes txs
	// KeyIsSigner is set by Decode: Body.Signer is the address of PubKey (AddressOf), as a
	// registration requires.
	KeyIsSigner bool
}

// Decode parses raw envelope bytes strictly: unknown fields, trailing data, oversize fields,
// malformed values, duplicate object keys and any encoding other than the canonical one (see the
// package comment) are rejected with a coded error. It never panics on any input.
//
// A well-formed tx takes a fast path (decodeCanonical); anything that path does not accept goes
// through the original strict decoding (decodeStrict), which reports why it is refused. The fast
// path accepts only what decodeStrict accepts, with the same result, so the two together accept
// exactly what decodeStrict alone does.
func Decode(raw []byte) (*Tx, error) {
	if len(raw) > MaxTxBytes {
		return nil, codes.Errorf(codes.TooLarge, "tx is %d bytes, limit %d", len(raw), MaxTxBytes)
	}
	if t := decodeCanonical(raw); t != nil {
		return t, nil
	}
	return decodeStrict(raw)
}

// decodeCanonical decodes a canonical tx, or returns nil. It reads the envelope and the body with
// the JSON decoder of github.com/go-json-experiment/json (encoding/json/v2; about three times
// faster than encoding/json's) and then requires, as decodeStrict does, that encoding/json
// writes exactly raw for the envelope and exactly the body bytes for the body. Bytes that
// encoding/json writes for an envelope or a body decode with encoding/json, strictly, to the
// value they were written from: so whatever passes here passes decodeStrict, which would decode
// the same value (its extra strictness, unknown fields and trailing data, cannot survive the
// comparison with the canonical bytes).
func decodeCanonical(raw []byte) *Tx {
	var t Tx
	if jsonv2.Unmarshal(raw, &t.Envelope, v2Syntax...) != nil ||
		len(t.PubKey) != ed25519.PublicKeySize || len(t.Sig) != ed25519.SignatureSize ||
		!encodesTo(&t.Envelope, raw) {
		return nil
	}
	body := t.Envelope.Body
	if CheckDuplicateKeys(body) != nil || jsonv2.Unmarshal(body, &t.Body, v2Syntax...) != nil ||
		checkBody(&t.Body) != nil || !encodesTo(&t.Body, body) {
		return nil
	}
	t.Hash = sha256.Sum256(raw)
	t.KeyIsSigner = AddressOf(t.PubKey) == t.Body.Signer
	return &t
}

// v2Syntax makes the v2 decoder accept the JSON syntax encoding/json does: invalid UTF-8 in
// strings (in msg, which is kept as raw bytes) and duplicate names (CheckDuplicateKeys refuses
// those, case-insensitively, before).
var v2Syntax = []jsonv2.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// decodeStrict is Decode with encoding/json's strict decoder (unknown fields and trailing data
// refused), step by step, each failure reported with its own message.
func decodeStrict(raw []byte) (*Tx, error) {
	var t Tx
	if err := strictUnmarshal(raw, &t.Envelope); err != nil {
		return nil, codes.Errorf(codes.Malformed, "envelope: %v", err)
	}
	if len(t.PubKey) != ed25519.PublicKeySize {
		return nil, codes.Errorf(codes.Malformed, "pub_key is %d bytes, want %d", len(t.PubKey), ed25519.PublicKeySize)
	}
	if len(t.Sig) != ed25519.SignatureSize {
		return nil, codes.Errorf(codes.Malformed, "sig is %d bytes, want %d", len(t.Sig), ed25519.SignatureSize)
	}
	// The tx hash is the hash of these bytes: accept exactly one encoding of an envelope, so
	// that nobody but the signer can make a second hash for the same signed body.
	if !encodesTo(&t.Envelope, raw) {
		return nil, codes.Errorf(codes.Malformed, "envelope is not canonical: encode it as tx.Sign does (encoding/json, no whitespace, standard padded base64)")
	}
	if err := CheckDuplicateKeys(t.Envelope.Body); err != nil {
		return nil, codes.Errorf(codes.Malformed, "body: %v", err)
	}
	if err := strictUnmarshal(t.Envelope.Body, &t.Body); err != nil {
		return nil, codes.Errorf(codes.Malformed, "body: %v", err)
	}
	if err := checkBody(&t.Body); err != nil {
		return nil, err
	}
	if !encodesTo(&t.Body, t.Envelope.Body) {
		return nil, codes.Errorf(codes.Malformed, "body is not canonical: encode it with encoding/json (field order chain_id, signer, nonce, type, msg; no whitespace)")
	}
	t.Hash = sha256.Sum256(raw)
	t.KeyIsSigner = AddressOf(t.PubKey) == t.Body.Signer
	return &t, nil
}

// checkBody checks a decoded body's field limits and its signer's form.
func checkBody(b *Body) error {
	switch {
	case len(b.ChainID) == 0 || len(b.ChainID) > MaxChainIDBytes:
		return codes.Errorf(codes.Malformed, "chain_id must be 1..%d bytes", MaxChainIDBytes)
	case len(b.Type) == 0 || len(b.Type) > MaxTypeBytes:
		return codes.Errorf(codes.Malformed, "type must be 1..%d bytes", MaxTypeBytes)
	case len(b.Msg) > MaxMsgBytes:
		return codes.Errorf(codes.TooLarge, "msg is %d bytes, limit %d", len(b.Msg), MaxMsgBytes)
	case len(b.Msg) == 0:
		return codes.Errorf(codes.Malformed, "msg is missing")
	}
	if err := b.Signer.Validate(); err != nil {
		return codes.Errorf(codes.Malformed, "signer: %v", err)
	}
	return nil
}

// encodesTo reports whether encoding/json writes v (an *Envelope or a *Body) as exactly want,
// as json.Marshal would write it (a json.Encoder writes the same bytes and a newline) into a
// pooled buffer.
func encodesTo(v any, want []byte) bool {
	e := encoders.Get().(*encoder)
	e.buf.Reset()
	err := e.enc.Encode(v)
	got := e.buf.Bytes()
	ok := err == nil && len(got) == len(want)+1 && bytes.Equal(got[:len(want)], want)
	encoders.Put(e)
	return ok
}

type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := new(encoder)
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

// verifyOpts is the rule a tx signature is checked by: Ed25519 as ZIP-215 specifies it (the
// cofactored equation; canonical S; any encoding of A and R that decodes), with
// curve25519-voi, the implementation and rule CometBFT itself uses for consensus signatures.
// ZIP-215 is the rule under which one signature checked alone and checked in a batch always get
// the same answer, so a node may verify txs in batches (VerifyBatch) while every node still
// decides every tx alike. Every signature Go's crypto/ed25519 makes verifies under it; it
// differs from crypto/ed25519's verification only on signatures no honest signer makes
// (small-order components, non-canonical point encodings).
var verifyOpts = &voi.Options{Verify: voi.VerifyOptionsZIP_215}

// Verify checks the Ed25519 signature over the exact body bytes.
func (t *Tx) Verify() error {
	if !voi.VerifyWithOptions(voi.PublicKey(t.PubKey), t.Envelope.Body, t.Sig, verifyOpts) {
		return errBadSignature()
	}
	return nil
}

func errBadSignature() error { return codes.Errorf(codes.BadSignature, "signature does not verify") }

// VerifyBatch checks the signatures of ts together and returns, for each, what Verify would:
// nil or a BadSignature error. Checking n valid signatures at once costs about 60 % of checking
// them one by one from 16 on (a random linear combination of the n equations is checked
// instead); when the combination fails, each is checked alone, so a bad signature costs its
// batch the difference but never changes another tx's answer.
func VerifyBatch(ts []*Tx) []error {
	errs := make([]error, len(ts))
	switch len(ts) {
	case 0:
		return errs
	case 1:
		errs[0] = ts[0].Verify()
		return errs
	}
	v := voi.NewBatchVerifierWithCapacity(len(ts))
	for _, t := range ts {
		v.AddWithOptions(voi.PublicKey(t.PubKey), t.Envelope.Body, t.Sig, verifyOpts)
	}
	if all, valid := v.Verify(rand.Reader); !all {
		for i, ok := range valid {
			if !ok {
				errs[i] = errBadSignature()
			}
		}
	}
	return errs
}

// Sign builds and encodes an envelope for body signed by key. msg is marshalled to JSON.
func Sign(key ed25519.PrivateKey, chainID string, signer Address, nonce uint64, typ string, msg any) ([]byte, error) {
	m, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode %s message: %w", typ, err)
	}
	body, err := json.Marshal(Body{ChainID: chainID, Signer: signer, Nonce: nonce, Type: typ, Msg: m})
	if err != nil {
		return nil, fmt.Errorf("encode body: %w", err)
	}
	if err := CheckDuplicateKeys(body); err != nil { // possible only with a json.RawMessage msg
		return nil, codes.Errorf(codes.Malformed, "body: %v", err)
	}
	env := Envelope{Body: body, PubKey: key.Public().(ed25519.PublicKey), Sig: ed25519.Sign(key, body)}
	raw, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode envelope: %w", err)
	}
	if len(raw) > MaxTxBytes {
		return nil, codes.Errorf(codes.TooLarge, "tx is %d bytes, limit %d", len(raw), MaxTxBytes)
	}
	return raw, nil
}

// DecodeMsg strictly decodes a message into v, with a Malformed error naming the type.
func DecodeMsg(raw json.RawMessage, v any) error {
	if err := strictUnmarshal(raw, v); err != nil {
		return codes.Errorf(codes.Malformed, "message: %v", err)
	}
	return nil
}

func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 48 {
		return s[:48] + "..."
	}
	return s
}
