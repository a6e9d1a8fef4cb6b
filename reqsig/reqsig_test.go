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

func TestSignVerify(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	other, _, _ := ed25519.GenerateKey(nil)
	addr := tx.AddressOf(pub)
	lookup := func(a tx.Address) (ed25519.PublicKey, error) {
		if a != addr {
			return nil, errors.New("unknown")
		}
		return pub, nil
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	body := []byte("ciphertext")
	signed := func() *httptestReq {
		r := httptest.NewRequest("PUT", "/v1/blobs/ab?x=1", nil)
		reqsig.Sign(r, "chain", addr, priv, body, now)
		return &httptestReq{r}
	}
	if got, err := reqsig.Verify(signed().Request, "chain", body, now.Add(time.Minute), lookup); err != nil || got != addr {
		t.Fatalf("valid request refused: %v", err)
	}
	cases := map[string]func(r *httptestReq) (chain string, body []byte, at time.Time){
		"other chain": func(r *httptestReq) (string, []byte, time.Time) { return "other", body, now },
		"other body":  func(r *httptestReq) (string, []byte, time.Time) { return "chain", []byte("x"), now },
		"stale":       func(r *httptestReq) (string, []byte, time.Time) { return "chain", body, now.Add(10 * time.Minute) },
		"other path": func(r *httptestReq) (string, []byte, time.Time) {
			r.URL.Path = "/v1/blobs/cd"
			return "chain", body, now
		},
		"other signer": func(r *httptestReq) (string, []byte, time.Time) {
			r.Header.Set(reqsig.HeaderSigner, string(tx.AddressOf(other)))
			return "chain", body, now
		},
		"no signature": func(r *httptestReq) (string, []byte, time.Time) {
			r.Header.Del(reqsig.HeaderSignature)
			return "chain", body, now
		},
	}
	for name, tamper := range cases {
		r := signed()
		c, b, at := tamper(r)
		if _, err := reqsig.Verify(r.Request, c, b, at, lookup); !errors.Is(err, reqsig.ErrUnsigned) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

type httptestReq struct{ *http.Request }
