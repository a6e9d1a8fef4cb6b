package reqsig_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/tx"
)

// sessionServer is a real HTTP server that opens sessions and answers each other request with
// the account that authenticated it.
type sessionServer struct {
	*httptest.Server
	v      *reqsig.Verifier
	opens  atomic.Int64
	mu     sync.Mutex
	now    time.Time
	lookup reqsig.KeyLookup
	// rewrite, when set, changes an open answer on its way out (a man in the middle).
	rewrite func(*reqsig.SessionGrant)
}

func newSessionServer(t *testing.T, s *signed) *sessionServer {
	srv := &sessionServer{v: reqsig.NewVerifier("chain"), now: s.now, lookup: s.lookup}
	srv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		srv.mu.Lock()
		now, lookup := srv.now, srv.lookup
		srv.mu.Unlock()
		if r.URL.Path == reqsig.SessionPath {
			srv.opens.Add(1)
			g, err := srv.v.OpenSession(r, body, now, lookup)
			if err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			if srv.rewrite != nil {
				srv.rewrite(g)
			}
			json.NewEncoder(w).Encode(g)
			return
		}
		who, err := srv.v.Verify(r, body, now, lookup)
		if errors.Is(err, reqsig.ErrSessionUnknown) {
			w.Header().Set(reqsig.HeaderSession, reqsig.SessionExpired)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		io.WriteString(w, string(who))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (srv *sessionServer) set(now time.Time, lookup reqsig.KeyLookup) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.now, srv.lookup = now, lookup
}

// send makes one request in the client's session and returns the request and the answer.
func (srv *sessionServer) send(t *testing.T, c *reqsig.Sessions, now time.Time, body string) (*http.Request, *http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/records?x=1", bytes.NewReader([]byte(body)))
	c.Sign(req, []byte(body), now)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return req, resp, string(out)
}

// replay sends req's headers again with body.
func (srv *sessionServer) replay(t *testing.T, req *http.Request, path, body string) int {
	t.Helper()
	again, _ := http.NewRequest(req.Method, srv.URL+path, bytes.NewReader([]byte(body)))
	again.Header = req.Header.Clone()
	resp, err := srv.Client().Do(again)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestSessionAuthenticatesWithOneSignature(t *testing.T) {
	s := newSigned(t)
	srv := newSessionServer(t, s)
	c := reqsig.NewSessions("chain", s.addr, s.priv, srv.Client())
	for i := range 20 {
		req, resp, who := srv.send(t, c, s.now, "body")
		if resp.StatusCode != http.StatusOK || who != string(s.addr) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, who)
		}
		if req.Header.Get(reqsig.HeaderSession) == "" || req.Header.Get(reqsig.HeaderSignature) != "" {
			t.Fatalf("request %d was not sent in a session: %v", i, req.Header)
		}
	}
	if n := srv.opens.Load(); n != 1 {
		t.Fatalf("%d sessions opened for 20 requests, want 1", n)
	}
}

func TestAttackSessionRequests(t *testing.T) {
	s := newSigned(t)
	srv := newSessionServer(t, s)
	c := reqsig.NewSessions("chain", s.addr, s.priv, srv.Client())
	req, resp, _ := srv.send(t, c, s.now, "body")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %d", resp.StatusCode)
	}
	t.Run("replayed", func(t *testing.T) {
		if code := srv.replay(t, req, "/v1/records?x=1", "body"); code != http.StatusUnauthorized {
			t.Fatalf("replayed request answered %d", code)
		}
	})
	t.Run("other body or path", func(t *testing.T) {
		req, _, _ := srv.send(t, c, s.now, "body")
		fresh := req.Header.Clone()
		for _, tc := range []struct{ path, body string }{{"/v1/records?x=1", "other"}, {"/v1/records?x=2", "body"}, {"/v1/audit?x=1", "body"}} {
			r2 := req.Clone(req.Context())
			r2.Header = fresh.Clone()
			r2.Header.Set(reqsig.HeaderNonce, "00112233445566778899aabbccddeeff")
			if code := srv.replay(t, r2, tc.path, tc.body); code != http.StatusUnauthorized {
				t.Fatalf("%s %q with another request's MAC answered %d", tc.path, tc.body, code)
			}
		}
	})
	t.Run("other signer named", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/records?x=1", bytes.NewReader([]byte("b")))
		c.Sign(req, []byte("b"), s.now)
		other, _, _ := ed25519.GenerateKey(nil)
		req.Header.Set(reqsig.HeaderSigner, string(tx.AddressOf(other)))
		if code := srv.replay(t, req, "/v1/records?x=1", "b"); code != http.StatusUnauthorized {
			t.Fatalf("a session used under another signer's name answered %d", code)
		}
	})
	t.Run("forged session id", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/records?x=1", bytes.NewReader([]byte("b")))
		c.Sign(req, []byte("b"), s.now)
		req.Header.Set(reqsig.HeaderSession, "ffffffffffffffffffffffffffffffff")
		if code := srv.replay(t, req, "/v1/records?x=1", "b"); code != http.StatusUnauthorized {
			t.Fatalf("an unknown session answered %d", code)
		}
	})
	t.Run("stale timestamp", func(t *testing.T) {
		_, resp, _ := srv.send(t, c, s.now.Add(-reqsig.MaxSkew-time.Second), "body")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a stale request answered %d", resp.StatusCode)
		}
	})
	t.Run("session opens no session", func(t *testing.T) {
		body, _ := json.Marshal(reqsig.SessionOffer{Key: mustX25519(t)})
		req, _ := http.NewRequest(http.MethodPost, srv.URL+reqsig.SessionPath, bytes.NewReader(body))
		c.Sign(req, body, s.now)
		if req.Header.Get(reqsig.HeaderSession) == "" {
			t.Fatal("the open request was not sent in the session")
		}
		if _, err := srv.v.OpenSession(req, body, s.now, s.lookup); err == nil {
			t.Fatal("a session opened another session")
		}
	})
}

func mustX25519(t *testing.T) []byte {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().Bytes()
}

func TestAttackSessionEnds(t *testing.T) {
	t.Run("key rotated on chain", func(t *testing.T) {
		s := newSigned(t)
		srv := newSessionServer(t, s)
		c := reqsig.NewSessions("chain", s.addr, s.priv, srv.Client())
		srv.send(t, c, s.now, "x")
		newPub, _, _ := ed25519.GenerateKey(nil)
		later := s.now.Add(reqsig.KeyRecheck)
		srv.set(later, func(tx.Address) (ed25519.PublicKey, error) { return newPub, nil })
		req, resp, _ := srv.send(t, c, later, "x")
		if resp.StatusCode != http.StatusUnauthorized || !c.Expired(req, resp) {
			t.Fatalf("a session of a rotated key answered %d (%v)", resp.StatusCode, resp.Header)
		}
		// The old key cannot open a new one either.
		if _, resp, _ := srv.send(t, c, later, "x"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the old key opened a session after rotation: %d", resp.StatusCode)
		}
	})
	t.Run("expired, then reopened", func(t *testing.T) {
		s := newSigned(t)
		srv := newSessionServer(t, s)
		c := reqsig.NewSessions("chain", s.addr, s.priv, srv.Client())
		srv.send(t, c, s.now, "x")
		later := s.now.Add(reqsig.SessionTTL + time.Second)
		srv.set(later, s.lookup)
		// The client renews before the expiry it was told: it opens a new session by itself.
		if _, resp, _ := srv.send(t, c, later, "x"); resp.StatusCode != http.StatusOK || srv.opens.Load() != 2 {
			t.Fatalf("after expiry: %d, %d opens", resp.StatusCode, srv.opens.Load())
		}
	})
	t.Run("server restarted", func(t *testing.T) {
		s := newSigned(t)
		srv := newSessionServer(t, s)
		c := reqsig.NewSessions("chain", s.addr, s.priv, srv.Client())
		srv.send(t, c, s.now, "x")
		srv.v = reqsig.NewVerifier("chain") // the node's sessions are gone
		req, resp, _ := srv.send(t, c, s.now, "x")
		if resp.StatusCode != http.StatusUnauthorized || !c.Expired(req, resp) {
			t.Fatalf("a lost session answered %d", resp.StatusCode)
		}
		if _, resp, _ := srv.send(t, c, s.now, "x"); resp.StatusCode != http.StatusOK {
			t.Fatalf("after the client forgot the lost session: %d", resp.StatusCode)
		}
	})
	t.Run("one account opens many", func(t *testing.T) {
		s := newSigned(t)
		srv := newSessionServer(t, s)
		var clients []*reqsig.Sessions
		for range reqsig.MaxSessionsPerSigner + 4 {
			c := reqsig.NewSessions("chain", s.addr, s.priv, srv.Client())
			srv.send(t, c, s.now, "x")
			clients = append(clients, c)
		}
		for i, c := range clients {
			req, resp, _ := srv.send(t, c, s.now, "x")
			evicted := i < len(clients)-reqsig.MaxSessionsPerSigner
			if got := resp.StatusCode == http.StatusUnauthorized && c.Expired(req, resp); got != evicted {
				t.Fatalf("client %d: answered %d, want evicted=%t", i, resp.StatusCode, evicted)
			}
		}
	})
}

// A man in the middle who swaps the server's key in the open answer learns nothing the server
// accepts: the client's MACs fail and its requests are refused.
func TestAttackSessionManInTheMiddle(t *testing.T) {
	s := newSigned(t)
	srv := newSessionServer(t, s)
	srv.rewrite = func(g *reqsig.SessionGrant) { g.Key = mustX25519(t) }
	c := reqsig.NewSessions("chain", s.addr, s.priv, srv.Client())
	if _, resp, _ := srv.send(t, c, s.now, "x"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a session whose answer was rewritten was accepted: %d", resp.StatusCode)
	}
}

// A server that offers no sessions still gets signed requests.
func TestSessionFallsBackToSignatures(t *testing.T) {
	s := newSigned(t)
	v := reqsig.NewVerifier("chain")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == reqsig.SessionPath {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if _, err := v.Verify(r, body, s.now, s.lookup); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	c := reqsig.NewSessions("chain", s.addr, s.priv, srv.Client())
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/x", nil)
	c.Sign(req, nil, s.now)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || req.Header.Get(reqsig.HeaderSignature) == "" {
		t.Fatalf("fallback: %d %v", resp.StatusCode, req.Header)
	}
}

func BenchmarkVerify(b *testing.B) {
	s := &signed{}
	pub, priv, _ := ed25519.GenerateKey(nil)
	s.addr, s.priv, s.now = tx.AddressOf(pub), priv, time.Now()
	s.lookup = func(tx.Address) (ed25519.PublicKey, error) { return pub, nil }
	v := reqsig.NewVerifier("chain")
	b.Run("signature", func(b *testing.B) {
		for b.Loop() {
			r := httptest.NewRequest("GET", "http://node-a:8080/v1/records/r1", nil)
			reqsig.Sign(r, "chain", s.addr, s.priv, nil, s.now)
			if _, err := v.Verify(r, nil, s.now, s.lookup); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("session", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			g, err := v.OpenSession(r, body, s.now, s.lookup)
			if err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(g)
		}))
		defer srv.Close()
		c := reqsig.NewSessions("chain", s.addr, s.priv, srv.Client())
		for b.Loop() {
			r := httptest.NewRequest("GET", srv.URL+"/v1/records/r1", nil)
			r.Host = r.URL.Host
			c.Sign(r, nil, s.now)
			if _, err := v.Verify(r, nil, s.now, s.lookup); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Requests sent at once by one client share the one session it opens.
func TestAttackSessionConcurrentOpen(t *testing.T) {
	s := newSigned(t)
	srv := newSessionServer(t, s)
	c := reqsig.NewSessions("chain", s.addr, s.priv, srv.Client())
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 32 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/x", nil)
			c.Sign(req, nil, s.now)
			resp, err := srv.Client().Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				failed.Add(1)
			}
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 || srv.opens.Load() != 1 {
		t.Fatalf("%d of 32 failed, %d sessions opened", failed.Load(), srv.opens.Load())
	}
}
