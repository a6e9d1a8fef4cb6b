package reqsig_test

import (
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/tx"
)

type signed struct {
	addr   tx.Address
	priv   ed25519.PrivateKey
	lookup reqsig.KeyLookup
	now    time.Time
	body   []byte
}

func newSigned(t *testing.T) *signed {
	pub, priv, _ := ed25519.GenerateKey(nil)
	addr := tx.AddressOf(pub)
	return &signed{addr: addr, priv: priv, now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), body: []byte("ciphertext"),
		lookup: func(a tx.Address) (ed25519.PublicKey, error) {
			if a != addr {
				return nil, errors.New("unknown")
			}
			return pub, nil
		}}
}

// request signs a request for node-a's API at s.now.
func (s *signed) request() *http.Request {
	r := httptest.NewRequest("PUT", "http://node-a:8080/v1/blobs/ab?x=1", nil)
	reqsig.Sign(r, "chain", s.addr, s.priv, s.body, s.now)
	return r
}

func TestSignVerify(t *testing.T) {
	s := newSigned(t)
	other, _, _ := ed25519.GenerateKey(nil)
	if got, err := reqsig.NewVerifier("chain").Verify(s.request(), s.body, s.now.Add(10*time.Second), s.lookup); err != nil || got != s.addr {
		t.Fatalf("valid request refused: %v", err)
	}
	cases := map[string]func(r *http.Request) (chain string, body []byte, at time.Time){
		"other chain": func(r *http.Request) (string, []byte, time.Time) { return "other", s.body, s.now },
		"other body":  func(r *http.Request) (string, []byte, time.Time) { return "chain", []byte("x"), s.now },
		"other path": func(r *http.Request) (string, []byte, time.Time) {
			r.URL.Path = "/v1/blobs/cd"
			return "chain", s.body, s.now
		},
		"other method": func(r *http.Request) (string, []byte, time.Time) {
			r.Method = "GET"
			return "chain", s.body, s.now
		},
		"other signer": func(r *http.Request) (string, []byte, time.Time) {
			r.Header.Set(reqsig.HeaderSigner, string(tx.AddressOf(other)))
			return "chain", s.body, s.now
		},
		"other nonce": func(r *http.Request) (string, []byte, time.Time) {
			r.Header.Set(reqsig.HeaderNonce, "00000000000000000000000000000000")
			return "chain", s.body, s.now
		},
		"no nonce": func(r *http.Request) (string, []byte, time.Time) {
			r.Header.Del(reqsig.HeaderNonce)
			return "chain", s.body, s.now
		},
		"no signature": func(r *http.Request) (string, []byte, time.Time) {
			r.Header.Del(reqsig.HeaderSignature)
			return "chain", s.body, s.now
		},
	}
	for name, tamper := range cases {
		r := s.request()
		c, b, at := tamper(r)
		if _, err := reqsig.NewVerifier(c).Verify(r, b, at, s.lookup); !errors.Is(err, reqsig.ErrUnsigned) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// Finding 7: a signed request seen by anyone could be replayed for 5 minutes, to any node,
// including one stamped 5 minutes in the future.
func TestAttackSignedRequestReplay(t *testing.T) {
	s := newSigned(t)
	v := reqsig.NewVerifier("chain")
	r := s.request()
	if _, err := v.Verify(r, s.body, s.now, s.lookup); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(r, s.body, s.now.Add(time.Second), s.lookup); !errors.Is(err, reqsig.ErrUnsigned) {
		t.Fatalf("replayed request accepted: %v", err)
	}
	// The same request presented to another node (another host) is refused there.
	r = s.request()
	r.Host = "node-b:8080"
	if _, err := reqsig.NewVerifier("chain").Verify(r, s.body, s.now, s.lookup); !errors.Is(err, reqsig.ErrUnsigned) {
		t.Fatalf("request for node-a accepted by node-b: %v", err)
	}
	// The window is short on both sides.
	for _, at := range []time.Duration{-5 * time.Minute, -time.Minute, time.Minute, 5 * time.Minute} {
		if _, err := reqsig.NewVerifier("chain").Verify(s.request(), s.body, s.now.Add(at), s.lookup); !errors.Is(err, reqsig.ErrUnsigned) {
			t.Errorf("request verified %s away from its stamp: %v", at, err)
		}
	}
	// A nonce is remembered for longer than the window: replaying just inside it still fails,
	// and memory is reclaimed once it is past.
	r = s.request()
	if _, err := v.Verify(r, s.body, s.now.Add(-reqsig.MaxSkew), s.lookup); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(r, s.body, s.now.Add(reqsig.MaxSkew), s.lookup); !errors.Is(err, reqsig.ErrUnsigned) {
		t.Fatalf("replay at the edge of the window accepted: %v", err)
	}
}
