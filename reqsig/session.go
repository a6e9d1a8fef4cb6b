package reqsig

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/medchain/medchain/tx"
)

// Sessions make a signed request's cost that of an HMAC. An Ed25519 verification costs a
// server more than answering a small read, so an account that sends many requests to one
// server opens a session there with one signed request (POST SessionPath, carrying an X25519
// public key). The server answers with its own X25519 key and a session id; both sides derive
// the session's MAC key with HKDF-SHA256 from the X25519 secret, bound to the chain, the
// account, the id and both public keys. Later requests carry HeaderSession and an HMAC-SHA256
// (HeaderMAC) over the same message a signature covers: chain, method, host, path and query,
// timestamp, single-use nonce, body hash. Freshness and replay rules are those of signatures.
//
// Someone who sees the exchange learns no key (X25519), and someone who rewrites it gets a key
// the server does not hold. A session ends after SessionTTL, when its server restarts or evicts
// it, or at once when its account's signing key changes on chain; a request with a session the
// server does not know is answered with HeaderSession: SessionExpired, and the client opens a
// new one. A session authenticates as much as a signature, but proves nothing to a third party
// (both ends hold its key).

// Session protocol constants.
const (
	SessionPath    = "/v1/sessions"          // POST: open a session (a signed request)
	HeaderSession  = "X-Medchain-Session"    // the session id of a request; SessionExpired in an answer
	HeaderMAC      = "X-Medchain-Mac"        // HMAC-SHA256 of the request's message, base64
	SessionExpired = "expired"               // HeaderSession of an answer to an unknown session
	sessionInfo    = "medchain-session/v1\n" // HKDF info prefix
)

// Session bounds. A server holds at most MaxSessions sessions, MaxSessionsPerSigner of them for
// one account (opening one more ends that account's oldest); a session lasts SessionTTL. A
// request in a session checks that the account's signing key is still the one that opened it
// when KeyRecheck has passed since the last check: a session ends within KeyRecheck of a key
// change (a couple of blocks), without a state read per request.
const (
	SessionTTL           = 10 * time.Minute
	KeyRecheck           = time.Second // a session's account key is read again after this
	MaxSessions          = 1 << 16
	MaxSessionsPerSigner = 16
	MaxSessionOffer      = 1 << 10 // bytes of an open request's body
	sessionIDBytes       = 16
)

// ErrSessionUnknown is the failure of a request whose session the server does not hold (never
// opened, expired, evicted, or its account's key changed). It wraps ErrUnsigned.
var ErrSessionUnknown = fmt.Errorf("%w: session unknown or expired", ErrUnsigned)

// SessionOffer is the body of an open request: the client's X25519 public key.
type SessionOffer struct {
	Key []byte `json:"key"`
}

// SessionGrant is the answer to an open request.
type SessionGrant struct {
	ID      string    `json:"id"`
	Key     []byte    `json:"key"` // the server's X25519 public key
	Expires time.Time `json:"expires"`
}

// sessionKey derives a session's MAC key from the X25519 secret.
func sessionKey(secret []byte, chainID string, signer tx.Address, id string, clientPub, serverPub []byte) ([]byte, error) {
	info := fmt.Sprintf("%s%s\n%s\n%s\n%x\n%x", sessionInfo, chainID, signer, id, clientPub, serverPub)
	return hkdf.Key(sha256.New, secret, nil, info, sha256.Size)
}

// macKey computes HMAC-SHA256 under one session's key. It reuses keyed states: keying one
// (hmac.New) costs two SHA-256 blocks and a few allocations, on every request otherwise.
type macKey struct{ states sync.Pool }

func newMACKey(key []byte) *macKey {
	m := &macKey{}
	m.states.New = func() any { return hmac.New(sha256.New, key) }
	return m
}

// sum is the HMAC of msg.
func (m *macKey) sum(msg []byte) []byte {
	h := m.states.Get().(hash.Hash)
	h.Reset()
	h.Write(msg)
	out := h.Sum(nil)
	m.states.Put(h)
	return out
}

// serverSession is a session a Verifier holds.
type serverSession struct {
	id      string
	signer  tx.Address
	pub     ed25519.PublicKey // the account's signing key when the session was opened
	key     *macKey
	expires time.Time
	checked time.Time // when pub was last found to be the account's key (v.mu)
}

// OpenSession answers a signed open request (body is its SessionOffer) at now: it verifies the
// signature like Verify (a session cannot open another), then holds a new session for the
// signer and returns its grant.
func (v *Verifier) OpenSession(req *http.Request, body []byte, now time.Time, lookup KeyLookup) (*SessionGrant, error) {
	if req.Header.Get(HeaderSession) != "" {
		return nil, fmt.Errorf("%w: a session is opened with a signed request", ErrUnsigned)
	}
	signer, err := v.Verify(req, body, now, lookup)
	if err != nil {
		return nil, err
	}
	var offer SessionOffer
	if err := json.Unmarshal(body, &offer); err != nil {
		return nil, fmt.Errorf("session offer: %w", err)
	}
	clientPub, err := ecdh.X25519().NewPublicKey(offer.Key)
	if err != nil {
		return nil, fmt.Errorf("session offer: %w", err)
	}
	pub, err := lookup(signer)
	if err != nil {
		return nil, fmt.Errorf("%w: signer unknown", ErrUnsigned)
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	secret, err := priv.ECDH(clientPub)
	if err != nil {
		return nil, fmt.Errorf("session offer: %w", err)
	}
	var idb [sessionIDBytes]byte
	rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	serverPub := priv.PublicKey().Bytes()
	key, err := sessionKey(secret, v.chainID, signer, id, offer.Key, serverPub)
	if err != nil {
		return nil, err
	}
	s := &serverSession{id: id, signer: signer, pub: pub, key: newMACKey(key), expires: now.Add(SessionTTL), checked: now}
	if err := v.hold(s, now); err != nil {
		return nil, err
	}
	return &SessionGrant{ID: id, Key: serverPub, Expires: s.expires}, nil
}

// ErrTooManySessions is the failure to open a session on a server that holds MaxSessions.
var ErrTooManySessions = errors.New("this server holds too many sessions; sign requests instead")

// hold stores s, ending expired sessions and the signer's oldest beyond MaxSessionsPerSigner.
func (v *Verifier) hold(s *serverSession, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.sessions == nil {
		v.sessions, v.bySigner = map[string]*serverSession{}, map[tx.Address][]string{}
	}
	for len(v.sessionOrder) > 0 {
		old, ok := v.sessions[v.sessionOrder[0]]
		if ok && !now.After(old.expires) {
			break
		}
		if ok {
			v.end(old)
		}
		v.sessionOrder = v.sessionOrder[1:]
	}
	if ids := v.bySigner[s.signer]; len(ids) >= MaxSessionsPerSigner {
		v.end(v.sessions[ids[0]])
	}
	if len(v.sessions) >= MaxSessions {
		return ErrTooManySessions
	}
	v.sessions[s.id] = s
	v.bySigner[s.signer] = append(v.bySigner[s.signer], s.id)
	v.sessionOrder = append(v.sessionOrder, s.id)
	return nil
}

// end forgets a session (v.mu held). Its id may stay in sessionOrder; hold skips it.
func (v *Verifier) end(s *serverSession) {
	delete(v.sessions, s.id)
	ids := v.bySigner[s.signer]
	for i, id := range ids {
		if id == s.id {
			ids = append(ids[:i:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(v.bySigner, s.signer)
	} else {
		v.bySigner[s.signer] = ids
	}
}

// verifySession checks a request authenticated with a session (HeaderSession set).
func (v *Verifier) verifySession(req *http.Request, body []byte, now time.Time, lookup KeyLookup) (tx.Address, error) {
	id, stamp, nonce := req.Header.Get(HeaderSession), req.Header.Get(HeaderTime), req.Header.Get(HeaderNonce)
	tag, err := base64.StdEncoding.DecodeString(req.Header.Get(HeaderMAC))
	if err != nil || len(tag) != sha256.Size || !validNonce(nonce) {
		return "", fmt.Errorf("%w: missing or malformed headers", ErrUnsigned)
	}
	t, err := time.Parse(time.RFC3339, stamp)
	if err != nil || t.Sub(now).Abs() > MaxSkew {
		return "", fmt.Errorf("%w: timestamp missing or more than %s off", ErrUnsigned, MaxSkew)
	}
	v.mu.Lock()
	s, ok := v.sessions[id]
	if ok && now.After(s.expires) {
		v.end(s)
		ok = false
	}
	recheck := ok && now.Sub(s.checked).Abs() >= KeyRecheck
	v.mu.Unlock()
	if !ok {
		return "", ErrSessionUnknown
	}
	if signer := req.Header.Get(HeaderSigner); signer != "" && tx.Address(signer) != s.signer {
		return "", fmt.Errorf("%w: signer is not the session's", ErrUnsigned)
	}
	if !hmac.Equal(tag, s.key.sum(message(v.chainID, req.Method, req.Host, req.URL.RequestURI(), stamp, nonce, body))) {
		return "", fmt.Errorf("%w: bad MAC", ErrUnsigned)
	}
	if recheck {
		pub, err := lookup(s.signer)
		v.mu.Lock()
		if err != nil || !bytes.Equal(pub, s.pub) {
			v.end(s)
			v.mu.Unlock()
			return "", ErrSessionUnknown
		}
		s.checked = now
		v.mu.Unlock()
	}
	if err := v.remember(bySession, id, nonce, now); err != nil {
		return "", err
	}
	return s.signer, nil
}

// Sessions is a client's side of request sessions: it authenticates each request to a server
// with a session it holds there, opening one when it has none, and signs the request instead
// when the server offers no sessions. It is safe for concurrent use.
type Sessions struct {
	chainID string
	signer  tx.Address
	key     ed25519.PrivateKey
	http    *http.Client

	mu    sync.Mutex
	hosts map[string]*hostSession // by scheme://host
}

// hostSession is the session a client holds with one server.
type hostSession struct {
	mu       sync.Mutex // held while opening
	id       string
	key      *macKey
	expires  time.Time // renewed a minute before (clocks differ)
	signOnly time.Time // after a failed open, requests are signed until then
}

// Failed opens are not retried for sessionRetry; a session is renewed sessionRenew before its
// expiry.
const (
	sessionRetry = time.Minute
	sessionRenew = time.Minute
)

// NewSessions returns the sessions of account signer (signing key key) on chain chainID, opened
// with hc.
func NewSessions(chainID string, signer tx.Address, key ed25519.PrivateKey, hc *http.Client) *Sessions {
	return &Sessions{chainID: chainID, signer: signer, key: key, http: hc, hosts: map[string]*hostSession{}}
}

// Signer is the account the sessions authenticate.
func (s *Sessions) Signer() tx.Address { return s.signer }

// Sign authenticates req for body at now: with a session at req's server (opened with
// req's context if needed), or with a signature.
func (s *Sessions) Sign(req *http.Request, body []byte, now time.Time) {
	hs := s.host(req)
	hs.mu.Lock()
	if hs.id == "" || !now.Before(hs.expires) {
		hs.id = ""
		if now.After(hs.signOnly) {
			if err := s.open(req, hs, now); err != nil {
				hs.signOnly = now.Add(sessionRetry)
			}
		}
	}
	id, key := hs.id, hs.key
	hs.mu.Unlock()
	if id == "" {
		Sign(req, s.chainID, s.signer, s.key, body, now)
		return
	}
	stamp, nonce := stampAndNonce(now)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	req.Header.Set(HeaderSigner, string(s.signer))
	req.Header.Set(HeaderSession, id)
	req.Header.Set(HeaderTime, stamp)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderMAC, base64.StdEncoding.EncodeToString(key.sum(message(s.chainID, req.Method, host, req.URL.RequestURI(), stamp, nonce, body))))
}

// Expired reports whether resp answers req's session as unknown, and then forgets that session:
// the request had no effect, and sent again (signed anew) it opens a new one.
func (s *Sessions) Expired(req *http.Request, resp *http.Response) bool {
	id := req.Header.Get(HeaderSession)
	if id == "" || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(HeaderSession) != SessionExpired {
		return false
	}
	hs := s.host(req)
	hs.mu.Lock()
	if hs.id == id {
		hs.id = ""
	}
	hs.mu.Unlock()
	return true
}

func (s *Sessions) host(req *http.Request) *hostSession {
	base := req.URL.Scheme + "://" + req.URL.Host
	s.mu.Lock()
	defer s.mu.Unlock()
	hs, ok := s.hosts[base]
	if !ok {
		hs = &hostSession{}
		s.hosts[base] = hs
	}
	return hs
}

// open opens a session with req's server into hs (hs.mu held).
func (s *Sessions) open(req *http.Request, hs *hostSession, now time.Time) error {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	clientPub := priv.PublicKey().Bytes()
	body, _ := json.Marshal(SessionOffer{Key: clientPub})
	u := *req.URL
	u.Path, u.RawPath, u.RawQuery = SessionPath, "", ""
	hr, err := http.NewRequestWithContext(req.Context(), http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	Sign(hr, s.chainID, s.signer, s.key, body, now)
	resp, err := s.http.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxSessionOffer))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("open session: HTTP %d", resp.StatusCode)
	}
	var g SessionGrant
	if err := json.Unmarshal(raw, &g); err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	serverPub, err := ecdh.X25519().NewPublicKey(g.Key)
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	secret, err := priv.ECDH(serverPub)
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	if len(g.ID) != 2*sessionIDBytes {
		return errors.New("open session: malformed id")
	}
	key, err := sessionKey(secret, s.chainID, s.signer, g.ID, clientPub, g.Key)
	if err != nil {
		return err
	}
	hs.id, hs.key = g.ID, newMACKey(key)
	hs.expires = earlier(now.Add(SessionTTL), g.Expires).Add(-sessionRenew)
	return nil
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
