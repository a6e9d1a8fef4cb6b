package api

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/tx"
)

// MaxCoverageVerifyBytes bounds a coverage verification request (a proof is 164 bytes; plans,
// addresses and encodings make up the rest).
const MaxCoverageVerifyBytes = 8 << 10

func (s *server) coverageKeys(w http.ResponseWriter, r *http.Request) {
	s.rawQuery(w, r, app.PathCoverageKeys, nil)
}

func (s *server) insurer(w http.ResponseWriter, r *http.Request) {
	s.rawQuery(w, r, app.PathInsurer, []byte(r.PathValue("address")))
}

// coveragePath answers a credential's registry path: ?insurer=ADDRESS&leaf=HEX.
func (s *server) coveragePath(w http.ResponseWriter, r *http.Request) {
	leaf, err := hex.DecodeString(r.URL.Query().Get("leaf"))
	if err != nil || len(leaf) != 32 {
		writeCodeErr(w, codes.Invalid, "leaf must be 32 bytes in hex")
		return
	}
	data, _ := json.Marshal(app.CoveragePathQuery{Insurer: tx.Address(r.URL.Query().Get("insurer")), Leaf: leaf})
	s.rawQuery(w, r, app.PathCoveragePath, data)
}

// coverageVerify checks a proof of coverage at the node's clock, without recording it: the body
// is an insurance.Verify with the verifier's address.
func (s *server) coverageVerify(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCoverageVerifyBytes))
	if err != nil {
		writeCodeErr(w, codes.TooLarge, "a coverage verification request is at most 8 KiB")
		return
	}
	var q app.CoverageVerifyQuery
	if err := json.Unmarshal(raw, &q); err != nil {
		writeCodeErr(w, codes.Malformed, "body: "+err.Error())
		return
	}
	q.At = time.Now().UTC()
	data, _ := json.Marshal(&q)
	s.rawQuery(w, r, app.PathCoverageVerify, data)
}

// coverageVerification answers a recorded verification by verifier and nonce (hex).
func (s *server) coverageVerification(w http.ResponseWriter, r *http.Request) {
	nonce, err := hex.DecodeString(r.PathValue("nonce"))
	if err != nil || len(nonce) != 32 {
		writeCodeErr(w, codes.Invalid, "nonce must be 32 bytes in hex")
		return
	}
	data, _ := json.Marshal(app.CoverageVerifiedQuery{Verifier: tx.Address(r.PathValue("verifier")), Nonce: nonce})
	s.rawQuery(w, r, app.PathCoverageVerified, data)
}

// claim answers a claim to one of its parties (a signed read): its provider, insurer or patient
// (or a guardian); to anyone else it does not exist.
func (s *server) claim(w http.ResponseWriter, r *http.Request) {
	reader, ok := s.reader(w, r)
	if !ok {
		return
	}
	data, _ := json.Marshal(app.ClaimQuery{Provider: tx.Address(r.PathValue("provider")), ID: r.PathValue("id"), Reader: reader})
	s.rawQuery(w, r, app.PathClaim, data)
}

func (s *server) policy(w http.ResponseWriter, r *http.Request) {
	data, _ := json.Marshal(app.PolicyQuery{Insurer: tx.Address(r.PathValue("insurer")), ID: r.PathValue("id")})
	s.rawQuery(w, r, app.PathPolicy, data)
}

func (s *server) balance(w http.ResponseWriter, r *http.Request) {
	s.rawQuery(w, r, app.PathBalance, []byte(r.PathValue("address")))
}
