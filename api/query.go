package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/tx"
)

// Proven is a state value with its Merkle proof. Verify it against the AppHash in the header of
// block Height+1 (the header that commits the state after block Height).
type Proven struct {
	Height int64           `json:"height"`
	Key    string          `json:"key"`             // the state key, as a string
	Value  json.RawMessage `json:"value"`           // the stored JSON value
	Proof  []byte          `json:"proof,omitempty"` // ics23 CommitmentProof (protobuf), with ?prove=true
}

// queryKey runs a /key query; it reports false after writing an error response.
func (s *server) queryKey(w http.ResponseWriter, r *http.Request, key []byte) (*Proven, bool) {
	height, err := heightParam(r)
	if err != nil {
		writeCodeErr(w, codes.Invalid, err.Error())
		return nil, false
	}
	prove := r.URL.Query().Get("prove") == "true"
	resp, err := s.Querier.Query(r.Context(), &abci.RequestQuery{Path: app.PathKey, Data: key, Height: height, Prove: prove})
	if err != nil {
		writeCodeErr(w, codes.Internal, "query failed")
		return nil, false
	}
	if resp.Code != 0 {
		writeCodeErr(w, codes.Code(resp.Code), resp.Log)
		return nil, false
	}
	return proven(resp, key, prove), true
}

// proven is a key query's answer with its proof, if asked for.
func proven(resp *abci.ResponseQuery, key []byte, prove bool) *Proven {
	p := &Proven{Height: resp.Height, Key: string(key), Value: resp.Value}
	if prove && resp.ProofOps != nil && len(resp.ProofOps.Ops) == 1 {
		p.Proof = resp.ProofOps.Ops[0].Data
	}
	return p
}

func heightParam(r *http.Request) (int64, error) {
	h := r.URL.Query().Get("height")
	if h == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(h, 10, 64)
	if err != nil || n < 0 {
		return 0, errBadHeight
	}
	return n, nil
}

var errBadHeight = codes.Errorf(codes.Invalid, "height must be a non-negative integer")

func (s *server) address(w http.ResponseWriter, r *http.Request) (tx.Address, bool) {
	a := tx.Address(r.PathValue("addr"))
	if err := a.Validate(); err != nil {
		writeCodeErr(w, codes.Invalid, err.Error())
		return "", false
	}
	return a, true
}

func (s *server) getAccount(w http.ResponseWriter, r *http.Request) {
	a, ok := s.address(w, r)
	if !ok {
		return
	}
	if p, ok := s.queryKey(w, r, identity.AccountKey(a)); ok {
		writeJSON(w, http.StatusOK, p)
	}
}

func (s *server) getKey(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if len(key) == 0 || len(key) > app.MaxQueryBytes {
		writeCodeErr(w, codes.Invalid, "key must be 1..1024 bytes")
		return
	}
	if app.ScopedKey([]byte(key)) {
		s.getScopedKey(w, r, []byte(key))
		return
	}
	if p, ok := s.queryKey(w, r, []byte(key)); ok {
		writeJSON(w, http.StatusOK, p)
	}
}

// getScopedKey answers a state key of a patient's metadata to a reader who may see it, and
// the same "not found" as for an absent key to anyone else.
func (s *server) getScopedKey(w http.ResponseWriter, r *http.Request, key []byte) {
	reader, ok := s.reader(w, r)
	if !ok {
		return
	}
	height, err := heightParam(r)
	if err != nil {
		writeCodeErr(w, codes.Invalid, err.Error())
		return
	}
	prove := r.URL.Query().Get("prove") == "true"
	data, _ := json.Marshal(app.KeyQuery{Key: key, Reader: reader, At: time.Now()})
	resp, ok := s.scopedQuery(w, r, reader, &abci.RequestQuery{Path: app.PathScopedKey, Data: data, Height: height, Prove: prove}, "state")
	if !ok {
		return
	}
	if resp.Code != 0 {
		writeCodeErr(w, codes.Code(resp.Code), resp.Log)
		return
	}
	writeJSON(w, http.StatusOK, proven(resp, key, prove))
}

// getAttestations lists a subject's attestations; with ?prove=true each one carries its proof.
// One page of them (?limit=&cursor=), with the next page's cursor in the headers (see setNext).
func (s *server) getAttestations(w http.ResponseWriter, r *http.Request) {
	a, ok := s.address(w, r)
	if !ok {
		return
	}
	height, err := heightParam(r)
	if err != nil {
		writeCodeErr(w, codes.Invalid, err.Error())
		return
	}
	page, ok := pageParams(w, r)
	if !ok {
		return
	}
	data, _ := json.Marshal(app.ListQuery{Address: a, Page: page})
	resp, err := s.Querier.Query(r.Context(), &abci.RequestQuery{Path: app.PathAttestations, Data: data, Height: height})
	if err != nil {
		writeCodeErr(w, codes.Internal, "query failed")
		return
	}
	if resp.Code != 0 {
		writeCodeErr(w, codes.Code(resp.Code), resp.Log)
		return
	}
	setNext(w, r, resp.Info)
	var list []identity.Attestation
	if err := json.Unmarshal(resp.Value, &list); err != nil {
		writeCodeErr(w, codes.Internal, "decode attestations")
		return
	}
	out := struct {
		Height       int64    `json:"height"`
		Attestations []Proven `json:"attestations"`
	}{Height: resp.Height, Attestations: []Proven{}}
	q := r.URL.Query()
	q.Set("height", strconv.FormatInt(resp.Height, 10))
	r.URL.RawQuery = q.Encode()
	for _, att := range list {
		p, ok := s.queryKey(w, r, identity.AttestationKey(a, att.ID))
		if !ok {
			return
		}
		out.Attestations = append(out.Attestations, *p)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getRegistrars(w http.ResponseWriter, r *http.Request) {
	s.moduleQuery(w, r, app.PathRegistrars, nil)
}

func (s *server) getMembers(w http.ResponseWriter, r *http.Request) {
	s.moduleQuery(w, r, app.PathMembers, nil)
}

func (s *server) getNetworkProposal(w http.ResponseWriter, r *http.Request) {
	s.moduleQuery(w, r, app.PathNetworkProp, []byte(r.PathValue("id")))
}

func (s *server) getProposal(w http.ResponseWriter, r *http.Request) {
	s.moduleQuery(w, r, app.PathProposal, []byte(r.PathValue("id")))
}

func (s *server) moduleQuery(w http.ResponseWriter, r *http.Request, path string, data []byte) {
	height, err := heightParam(r)
	if err != nil {
		writeCodeErr(w, codes.Invalid, err.Error())
		return
	}
	resp, err := s.Querier.Query(r.Context(), &abci.RequestQuery{Path: path, Data: data, Height: height})
	if err != nil {
		writeCodeErr(w, codes.Internal, "query failed")
		return
	}
	if resp.Code != 0 {
		writeCodeErr(w, codes.Code(resp.Code), resp.Log)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Height int64           `json:"height"`
		Value  json.RawMessage `json:"value"`
	}{resp.Height, resp.Value})
}

// NextCursorHeader carries the cursor of a list's next page; it is absent after the last page.
// The same page is linked in a Link header (rel="next").
const NextCursorHeader = "X-Next-Cursor"

// pageParams reads ?limit= and ?cursor= (the app checks their bounds); it reports false after
// writing an error response.
func pageParams(w http.ResponseWriter, r *http.Request) (app.Page, bool) {
	q := r.URL.Query()
	p := app.Page{Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > app.MaxPageLimit {
			writeCodeErr(w, codes.Invalid, fmt.Sprintf("limit must be an integer between 1 and %d (default %d)", app.MaxPageLimit, app.DefaultPageLimit))
			return p, false
		}
		p.Limit = n
	}
	return p, true
}

// setNext announces the next page of a list answer, if any.
func setNext(w http.ResponseWriter, r *http.Request, next string) {
	if next == "" {
		return
	}
	q := r.URL.Query()
	q.Set("cursor", next)
	w.Header().Set(NextCursorHeader, next)
	w.Header().Set("Link", "<"+r.URL.Path+"?"+q.Encode()+`>; rel="next"`)
}

// listQuery answers a list query path: one page as a JSON array, the next cursor in headers.
func (s *server) listQuery(w http.ResponseWriter, r *http.Request, path string, data []byte) {
	resp, err := s.Querier.Query(r.Context(), &abci.RequestQuery{Path: path, Data: data})
	if err != nil {
		writeCodeErr(w, codes.Internal, "query failed")
		return
	}
	writeAnswer(w, r, resp)
}

// writeAnswer writes a query's answer: its value as is (with a list's next cursor in headers),
// or its error.
func writeAnswer(w http.ResponseWriter, r *http.Request, resp *abci.ResponseQuery) {
	if resp.Code != 0 {
		writeCodeErr(w, codes.Code(resp.Code), resp.Log)
		return
	}
	setNext(w, r, resp.Info)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(append(resp.Value, '\n'))
}

// accountList answers the list of an account ({addr}) at path, one page.
func (s *server) accountList(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.address(w, r)
		if !ok {
			return
		}
		page, ok := pageParams(w, r)
		if !ok {
			return
		}
		data, _ := json.Marshal(app.ListQuery{Address: a, Page: page})
		s.listQuery(w, r, path, data)
	}
}
