// Package reqsig signs and verifies HTTP requests with an account's Ed25519 key, so that a node
// or an agent knows which account asks (for ciphertext, or for an organization's unwrap) without
// sessions or passwords. The signature covers the chain id, method, host (the server it was
// meant for), path and query, a timestamp, a single-use nonce and the SHA-256 of the body. A
// Verifier refuses a request whose timestamp is more than MaxSkew from its clock and any nonce it
// has already accepted, so a captured request cannot be replayed, to this server or another.
package reqsig

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/medchain/medchain/tx"
)

// Headers carrying the signature.
const (
	HeaderSigner    = "X-Medchain-Signer"
	HeaderTime      = "X-Medchain-Time"
	HeaderNonce     = "X-Medchain-Nonce"
	HeaderSignature = "X-Medchain-Signature"
)

// MaxSkew is how far a request's timestamp may be from the verifier's clock. A nonce is
// remembered for 2*MaxSkew, longer than any timestamp it could be accepted with.
const MaxSkew = 30 * time.Second

// MaxRemembered bounds the nonces a Verifier holds. A verifier that is full refuses requests
// (fails closed) until old nonces age out.
const MaxRemembered = 1 << 20

const nonceBytes = 16

// ErrUnsigned is returned for a request with missing, stale, replayed or invalid signature
// headers.
var ErrUnsigned = errors.New("request is not validly signed")

// messageV2 starts what a request's signature or MAC covers.
const messageV2 = "medchain-request/v2\n"

// message is what a request's signature or MAC covers: the chain, method, host, path and query,
// timestamp, nonce and body hash (hex), each on its own line.
func message(chainID, method, host, uri, stamp, nonce string, body []byte) []byte {
	sum := sha256.Sum256(body)
	m := make([]byte, 0, len(messageV2)+len(chainID)+len(method)+len(host)+len(uri)+len(stamp)+len(nonce)+6+2*len(sum))
	m = append(m, messageV2...)
	for _, f := range []string{chainID, method, host, uri, stamp, nonce} {
		m = append(append(m, f...), '\n')
	}
	return hex.AppendEncode(m, sum[:])
}

// Sign adds signature headers to req for body, signed by signer's key at now, with a fresh
// nonce. The request is bound to the host of its URL.
func Sign(req *http.Request, chainID string, signer tx.Address, key ed25519.PrivateKey, body []byte, now time.Time) {
	stamp, nonce := stampAndNonce(now)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	sig := ed25519.Sign(key, message(chainID, req.Method, host, req.URL.RequestURI(), stamp, nonce, body))
	req.Header.Set(HeaderSigner, string(signer))
	req.Header.Set(HeaderTime, stamp)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
}

// stampAndNonce returns a request's timestamp at now and a fresh nonce.
func stampAndNonce(now time.Time) (string, string) {
	var n [nonceBytes]byte
	rand.Read(n[:])
	return now.UTC().Format(time.RFC3339), hex.EncodeToString(n[:])
}

// KeyLookup returns an account's current signing key.
type KeyLookup func(tx.Address) (ed25519.PublicKey, error)

// Verifier checks signed requests for one server and remembers the nonces it accepted.
type Verifier struct {
	chainID string

	mu    sync.Mutex
	seen  map[nonceKey]struct{}
	order []seenNonce // in acceptance order, for expiry

	sessions     map[string]*serverSession // by id
	bySigner     map[tx.Address][]string   // session ids, oldest first
	sessionOrder []string                  // ids in opening order, for expiry
}

// nonceKey names an accepted nonce: whose (a signer's address or a session's id, decoded, after
// a kind byte) and the nonce itself. It holds no pointer, so the garbage collector does not scan
// the up to MaxRemembered nonces a busy server holds.
type nonceKey struct {
	who   [1 + 20]byte
	nonce [nonceBytes]byte
}

// Kinds of nonceKey.who.
const (
	bySignature = 1
	bySession   = 2
)

// newNonceKey is the key of hex nonce from who (hex: a 40-digit address or a session id), or
// false if either does not decode.
func newNonceKey(kind byte, who, nonce string) (nonceKey, bool) {
	var k nonceKey
	k.who[0] = kind
	if hex.DecodedLen(len(who)) > len(k.who)-1 || hex.DecodedLen(len(nonce)) != nonceBytes {
		return k, false
	}
	if _, err := hex.Decode(k.who[1:], []byte(who)); err != nil {
		return k, false
	}
	if _, err := hex.Decode(k.nonce[:], []byte(nonce)); err != nil {
		return k, false
	}
	return k, true
}

type seenNonce struct {
	key     nonceKey
	expires int64 // Unix nanoseconds
}

// NewVerifier returns a Verifier of requests for chainID.
func NewVerifier(chainID string) *Verifier {
	return &Verifier{chainID: chainID, seen: map[nonceKey]struct{}{}}
}

// Verify checks req's signature over body at now and returns the signer. The request must be
// meant for the host it arrived at, carry a fresh timestamp and a nonce this Verifier has not
// accepted before. A request may instead carry a session (see OpenSession) and its MAC.
// Every failure is ErrUnsigned (wrapped with the reason), so callers can answer all of them
// alike; a request with a session this Verifier does not hold fails with ErrSessionUnknown.
func (v *Verifier) Verify(req *http.Request, body []byte, now time.Time, lookup KeyLookup) (tx.Address, error) {
	if req.Header.Get(HeaderSession) != "" {
		return v.verifySession(req, body, now, lookup)
	}
	signer := tx.Address(req.Header.Get(HeaderSigner))
	stamp, nonce := req.Header.Get(HeaderTime), req.Header.Get(HeaderNonce)
	sig, err := base64.StdEncoding.DecodeString(req.Header.Get(HeaderSignature))
	if err != nil || len(sig) != ed25519.SignatureSize || signer.Validate() != nil || !validNonce(nonce) {
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
	if !ed25519.Verify(pub, message(v.chainID, req.Method, req.Host, req.URL.RequestURI(), stamp, nonce, body), sig) {
		return "", fmt.Errorf("%w: bad signature", ErrUnsigned)
	}
	if err := v.remember(bySignature, string(signer), nonce, now); err != nil {
		return "", err
	}
	return signer, nil
}

// remember records a nonce of who as used, refusing one already used.
func (v *Verifier) remember(kind byte, who, nonce string, now time.Time) error {
	key, ok := newNonceKey(kind, who, nonce)
	if !ok {
		return fmt.Errorf("%w: malformed nonce", ErrUnsigned)
	}
	t := now.UnixNano()
	v.mu.Lock()
	defer v.mu.Unlock()
	for len(v.order) > 0 && t > v.order[0].expires {
		delete(v.seen, v.order[0].key)
		v.order = v.order[1:]
	}
	if _, ok := v.seen[key]; ok {
		return fmt.Errorf("%w: nonce already used", ErrUnsigned)
	}
	if len(v.seen) >= MaxRemembered {
		return fmt.Errorf("%w: too many recent requests", ErrUnsigned)
	}
	v.seen[key] = struct{}{}
	v.order = append(v.order, seenNonce{key: key, expires: now.Add(2 * MaxSkew).UnixNano()})
	return nil
}

func validNonce(n string) bool {
	if len(n) != 2*nonceBytes {
		return false
	}
	_, err := hex.DecodeString(n)
	return err == nil
}
