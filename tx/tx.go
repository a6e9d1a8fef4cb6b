// Package tx defines medchain's transaction envelope: the signed body, its size limits, its
// decoding (strict, bounded, fuzzed) and signing. The signature covers the exact body bytes; the
// body is never re-serialized to verify it.
package tx

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"

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
}

// Decode parses raw envelope bytes strictly: unknown fields, trailing data, oversize fields and
// malformed values are rejected with a coded error. It never panics on any input.
func Decode(raw []byte) (*Tx, error) {
	if len(raw) > MaxTxBytes {
		return nil, codes.Errorf(codes.TooLarge, "tx is %d bytes, limit %d", len(raw), MaxTxBytes)
	}
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
	if err := strictUnmarshal(t.Envelope.Body, &t.Body); err != nil {
		return nil, codes.Errorf(codes.Malformed, "body: %v", err)
	}
	b := &t.Body
	switch {
	case len(b.ChainID) == 0 || len(b.ChainID) > MaxChainIDBytes:
		return nil, codes.Errorf(codes.Malformed, "chain_id must be 1..%d bytes", MaxChainIDBytes)
	case len(b.Type) == 0 || len(b.Type) > MaxTypeBytes:
		return nil, codes.Errorf(codes.Malformed, "type must be 1..%d bytes", MaxTypeBytes)
	case len(b.Msg) > MaxMsgBytes:
		return nil, codes.Errorf(codes.TooLarge, "msg is %d bytes, limit %d", len(b.Msg), MaxMsgBytes)
	case len(b.Msg) == 0:
		return nil, codes.Errorf(codes.Malformed, "msg is missing")
	}
	if err := b.Signer.Validate(); err != nil {
		return nil, codes.Errorf(codes.Malformed, "signer: %v", err)
	}
	t.Hash = sha256.Sum256(raw)
	return &t, nil
}

// verifyOpts gives Go standard library semantics (crypto/ed25519) with curve25519-voi's faster
// verification (the implementation CometBFT itself uses for consensus signatures).
var verifyOpts = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// Verify checks the Ed25519 signature over the exact body bytes.
func (t *Tx) Verify() error {
	if !voi.VerifyWithOptions(voi.PublicKey(t.PubKey), t.Envelope.Body, t.Sig, verifyOpts) {
		return codes.Errorf(codes.BadSignature, "signature does not verify")
	}
	return nil
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
