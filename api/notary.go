package api

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
)

// notaryLeaf answers GET /v1/notary/leaf?height=&alg=&digest=: where a digest notarized in the
// block at height sits in that block's tree, with its path to the root (app.NotaryLeaf). The
// root's state proof is GET /v1/state/{notary.RootKey}?prove=true&height=.
func (s *server) notaryLeaf(w http.ResponseWriter, r *http.Request) {
	if !s.takeHeavy(w) {
		return
	}
	defer s.releaseHeavy()
	q := r.URL.Query()
	h, err := strconv.ParseInt(q.Get("height"), 10, 64)
	if err != nil || h < 1 {
		writeCodeErr(w, codes.Invalid, "height is a positive integer: the block that notarized the digest")
		return
	}
	d := q.Get("digest")
	if len(d) > 128 {
		writeCodeErr(w, codes.Invalid, "digest over 128 hex digits")
		return
	}
	digest, err := hex.DecodeString(d)
	if err != nil {
		writeCodeErr(w, codes.Invalid, "digest is hexadecimal")
		return
	}
	data, _ := json.Marshal(app.NotaryLeafQuery{Height: h, Alg: q.Get("alg"), Digest: digest})
	s.listQuery(w, r, app.PathNotaryLeaf, data)
}

// maxHeavy is how many notary paths and time stamps a node computes at once.
const maxHeavy = 4

// takeHeavy takes one of the node's slots for a request that reads a block's notarized leaves,
// or answers 503 busy (retry after a second) when all are taken.
func (s *server) takeHeavy(w http.ResponseWriter) bool {
	select {
	case s.heavy <- struct{}{}:
		return true
	default:
		w.Header().Set("Retry-After", "1")
		writeErr(w, http.StatusServiceUnavailable, "busy", "this node is computing other notarization proofs; retry in a second")
		return false
	}
}

func (s *server) releaseHeavy() { <-s.heavy }
