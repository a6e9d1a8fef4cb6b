// Package reqsig signs and verifies HTTP requests with an account's Ed25519 key, so that a node
// or an agent knows which account asks (for ciphertext, or for an organization's unwrap) without
// sessions or passwords. The signature covers the chain id, method, path and query, a timestamp
// and the SHA-256 of the body; a request older or newer than MaxSkew is refused.
package reqsig

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/medchain/medchain/tx"
)

// Headers carrying the signature.
const (
	HeaderSigner    = "X-Medchain-Signer"
	HeaderTime      = "X-Medchain-Time"
	HeaderSignature = "X-Medchain-Signature"
)

// MaxSkew is how far a request's timestamp may be from the verifier's clock.
const MaxSkew = 5 * time.Minute

// ErrUnsigned is returned for a request with missing, stale or invalid signature headers.
var ErrUnsigned = errors.New("request is not validly signed")

func message(chainID, method, uri, stamp string, body []byte) []byte {
	sum := sha256.Sum256(body)
	return fmt.Appendf(nil, "medchain-request/v1\n%s\n%s\n%s\n%s\n%s", chainID, method, uri, stamp, hex.EncodeToString(sum[:]))
}

// Sign adds signature headers to req for body, signed by signer's key at now.
func Sign(req *http.Request, chainID string, signer tx.Address, key ed25519.PrivateKey, body []byte, now time.Time) {
	stamp := now.UTC().Format(time.RFC3339)
	sig := ed25519.Sign(key, message(chainID, req.Method, req.URL.RequestURI(), stamp, body))
	req.Header.Set(HeaderSigner, string(signer))
	req.Header.Set(HeaderTime, stamp)
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
}

// KeyLookup returns an account's current signing key.
type KeyLookup func(tx.Address) (ed25519.PublicKey, error)

// Verify checks req's signature over body at now and returns the signer. Every failure is
// ErrUnsigned (wrapped with the reason), so callers can answer all of them alike.
func Verify(req *http.Request, chainID string, body []byte, now time.Time, lookup KeyLookup) (tx.Address, error) {
	signer := tx.Address(req.Header.Get(HeaderSigner))
	stamp := req.Header.Get(HeaderTime)
	sig, err := base64.StdEncoding.DecodeString(req.Header.Get(HeaderSignature))
	if err != nil || len(sig) != ed25519.SignatureSize || signer.Validate() != nil {
		return "", fmt.Errorf("%w: missing or malformed headers", ErrUnsigned)
	}
	t, err := time.Parse(time.RFC3339, stamp)
	if err != nil || t.Sub(now).Abs() > MaxSkew {
		return "", fmt.Errorf("%w: timestamp missing or more than %s off", ErrUnsigned, MaxSkew)
	}
	pub, err := lookup(signer)
	if err != nil {
		return "", fmt.Errorf("%w: signer unknown", ErrUnsigned)
	}
	if !ed25519.Verify(pub, message(chainID, req.Method, req.URL.RequestURI(), stamp, body), sig) {
		return "", fmt.Errorf("%w: bad signature", ErrUnsigned)
	}
	return signer, nil
}
