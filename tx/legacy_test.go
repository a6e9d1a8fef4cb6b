package tx_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/tx"
)

// This file keeps tx.Decode and tx.CheckDuplicateKeys as they were before the decoding was made
// faster (encoding/json's strict decoder for the envelope and body; the duplicate-key search on
// encoding/json's token stream), as the reference the new code is checked against: a change in
// what decodes would change which txs a block may hold, and replaying old blocks would diverge.

func legacyDecode(raw []byte) (*tx.Tx, error) {
	if len(raw) > tx.MaxTxBytes {
		return nil, codes.Errorf(codes.TooLarge, "tx is %d bytes, limit %d", len(raw), tx.MaxTxBytes)
	}
	var t tx.Tx
	if err := legacyStrictUnmarshal(raw, &t.Envelope); err != nil {
		return nil, codes.Errorf(codes.Malformed, "envelope: %v", err)
	}
	if len(t.PubKey) != ed25519.PublicKeySize {
		return nil, codes.Errorf(codes.Malformed, "pub_key is %d bytes, want %d", len(t.PubKey), ed25519.PublicKeySize)
	}
	if len(t.Sig) != ed25519.SignatureSize {
		return nil, codes.Errorf(codes.Malformed, "sig is %d bytes, want %d", len(t.Sig), ed25519.SignatureSize)
	}
	if canon, err := json.Marshal(&t.Envelope); err != nil || !bytes.Equal(canon, raw) {
		return nil, codes.Errorf(codes.Malformed, "envelope is not canonical")
	}
	if err := legacyCheckDuplicateKeys(t.Envelope.Body); err != nil {
		return nil, codes.Errorf(codes.Malformed, "body: %v", err)
	}
	if err := legacyStrictUnmarshal(t.Envelope.Body, &t.Body); err != nil {
		return nil, codes.Errorf(codes.Malformed, "body: %v", err)
	}
	b := &t.Body
	switch {
	case len(b.ChainID) == 0 || len(b.ChainID) > tx.MaxChainIDBytes:
		return nil, codes.Errorf(codes.Malformed, "chain_id must be 1..%d bytes", tx.MaxChainIDBytes)
	case len(b.Type) == 0 || len(b.Type) > tx.MaxTypeBytes:
		return nil, codes.Errorf(codes.Malformed, "type must be 1..%d bytes", tx.MaxTypeBytes)
	case len(b.Msg) > tx.MaxMsgBytes:
		return nil, codes.Errorf(codes.TooLarge, "msg is %d bytes, limit %d", len(b.Msg), tx.MaxMsgBytes)
	case len(b.Msg) == 0:
		return nil, codes.Errorf(codes.Malformed, "msg is missing")
	}
	if err := b.Signer.Validate(); err != nil {
		return nil, codes.Errorf(codes.Malformed, "signer: %v", err)
	}
	if canon, err := json.Marshal(b); err != nil || !bytes.Equal(canon, t.Envelope.Body) {
		return nil, codes.Errorf(codes.Malformed, "body is not canonical")
	}
	t.Hash = sha256.Sum256(raw)
	t.KeyIsSigner = tx.AddressOf(t.PubKey) == t.Body.Signer
	return &t, nil
}

func legacyCheckDuplicateKeys(raw []byte) error {
	type frame struct {
		keys    map[string]struct{} // nil for an array
		wantKey bool                // in an object: the next token is a key
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			top := &stack[n-1]
			if top.wantKey {
				key, ok := tok.(string)
				if !ok {
					return fmt.Errorf("object key is not a string")
				}
				k := legacyFoldKey(key)
				if _, dup := top.keys[k]; dup {
					return fmt.Errorf("duplicate object key %q", key)
				}
				top.keys[k] = struct{}{}
				top.wantKey = false
				continue
			}
			top.wantKey = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{keys: map[string]struct{}{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		}
	}
}

func legacyFoldKey(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			out = append(out, byte(r))
			continue
		}
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

func legacyStrictUnmarshal(raw []byte, v any) error {
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
