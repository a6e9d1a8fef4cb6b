package app

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtcrypto "github.com/cometbft/cometbft/proto/tendermint/crypto"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Query paths. "/key" returns a raw state value and, with Prove, an ics23 proof against the app
// hash committed in the header of height+1. Module paths return JSON without proofs; their items
// can each be proven with "/key". List paths answer one page (see Page); the data of the
// account lists (attestations, affiliations, consent grants) is a ListQuery, or a bare address
// for the first page.
const (
	PathKey          = "/key"
	PathAttestations = "/identity/attestations"
	PathRegistrars   = "/identity/registrars"
	PathProposal     = "/identity/proposal"
	PathAffiliations = "/identity/affiliations"
	PathMembers      = "/network/members"
	PathNetworkProp  = "/network/proposal"
)

// ProofOpType names the proof format in ResponseQuery.ProofOps.
const ProofOpType = "ics23:iavl"

// MaxQueryBytes bounds a query's data.
const MaxQueryBytes = 1024

// Query answers from a committed version (0 = latest). It is safe to call concurrently with
// block execution.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	if len(req.Data) > MaxQueryBytes {
		return queryErr(codes.Errorf(codes.TooLarge, "query data over %d bytes", MaxQueryBytes)), nil
	}
	view := a.latest.Load()
	var err error
	if req.Height != 0 || view == nil {
		view, err = a.store.At(req.Height)
	}
	if err != nil {
		return queryErr(codes.Errorf(codes.NotFound, "no state at height %d", req.Height)), nil
	}
	resp, err := a.query(view, req)
	if err != nil {
		return queryErr(err), nil
	}
	resp.Height = view.Version()
	return resp, nil
}

func (a *App) query(view *state.View, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	switch req.Path {
	case PathKey:
		return queryKey(view, req.Data, req.Prove)
	case PathScopedKey:
		return queryScopedKey(view, req)
	case PathDirectory:
		return queryDirectory(view, req.Data)
	case PathNotaryLeaf:
		return queryNotaryLeaf(view, req.Data)
	case PathTrial:
		return queryTrial(view, req.Data)
	case PathTrialBatches:
		return queryTrialBatches(view, req.Data)
	case PathTrialSubjects:
		return queryTrialSubjects(view, req.Data)
	case PathTrialReads:
		return queryTrialReads(view, req.Data)
	case PathCare:
		return queryCare(view, req.Data)
	case PathProgram:
		return queryProgram(view, req.Data)
	case PathStudy, PathStudyContributions, PathStudyDatasets, PathStudySources, PathStudyReads, PathPatientResearch, PathConsultations:
		return queryResearch(view, req.Path, req.Data)
	case PathPatientTrials:
		return queryPatientTrials(view, req.Data)
	case PathAttestations:
		q, err := parseListQuery(req.Data)
		if err != nil {
			return nil, err
		}
		return pageResp(listPage[identity.Attestation](view, identity.AttestationPrefix(q.Address), q.Page, nil))
	case PathAffiliations:
		q, err := parseListQuery(req.Data)
		if err != nil {
			return nil, err
		}
		return pageResp(listPage[identity.Affiliation](view, identity.AffiliationPrefix(q.Address), q.Page, nil))
	case PathRegistrars:
		list, err := identity.Registrars(view)
		return jsonResp(list, err)
	case PathProposal:
		id, err := strconv.ParseUint(string(req.Data), 10, 64)
		if err != nil {
			return nil, codes.Errorf(codes.Invalid, "proposal id must be a number")
		}
		p, err := identity.GetProposal(view, id)
		return jsonResp(p, err)
	case PathMembers:
		list, err := network.Members(view)
		return jsonResp(list, err)
	case PathNetworkProp:
		id, err := strconv.ParseUint(string(req.Data), 10, 64)
		if err != nil {
			return nil, codes.Errorf(codes.Invalid, "proposal id must be a number")
		}
		p, err := network.GetProposal(view, id)
		return jsonResp(p, err)
	}
	if resp, ok, err := queryConsent(view, req); ok {
		return resp, err
	}
	if resp, ok, err := queryRecords(view, req); ok {
		return resp, err
	}
	if resp, ok, err := querySupply(view, req); ok {
		return resp, err
	}
	if resp, ok, err := queryInsurance(view, req); ok {
		return resp, err
	}
	return nil, codes.Errorf(codes.UnknownType, "unknown query path %q", req.Path)
}

// queryKey reads a state key, with its proof if prove.
func queryKey(view *state.View, key []byte, prove bool) (*abci.ResponseQuery, error) {
	value, err := view.Get(key)
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "read: %v", err)
	}
	resp := &abci.ResponseQuery{Key: key, Value: value}
	if value == nil {
		resp.Code, resp.Log = uint32(codes.NotFound), "not found"
	}
	if prove {
		proof, err := view.Proof(key)
		if err != nil {
			return nil, codes.Errorf(codes.Internal, "proof: %v", err)
		}
		bz, err := proof.Marshal()
		if err != nil {
			return nil, codes.Errorf(codes.Internal, "encode proof: %v", err)
		}
		resp.ProofOps = &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{{Type: ProofOpType, Key: key, Data: bz}}}
	}
	return resp, nil
}

func jsonResp(v any, err error) (*abci.ResponseQuery, error) {
	if err != nil {
		return nil, err
	}
	bz, err := json.Marshal(v)
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "encode: %v", err)
	}
	return &abci.ResponseQuery{Value: bz}, nil
}

func queryErr(err error) *abci.ResponseQuery {
	return &abci.ResponseQuery{Code: uint32(codes.Of(err)), Log: err.Error(), Codespace: "medchain"}
}

// Paging of list queries. A list path answers one page: a JSON array of at most the page's limit
// of items, in key order, with the cursor of the next page in ResponseQuery.Info (empty after the
// last page). A page seeks to its cursor and stops reading state as soon as it is full, so its cost
// does not grow with the length of the list.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
	// MaxPageScan bounds the entries one page of a filtered list (an audit trail filtered by
	// requester, category or time) reads; a page that reaches it ends early, possibly with fewer
	// items than its limit or none, and a cursor to continue from.
	MaxPageScan    = 10 * MaxPageLimit
	maxCursorBytes = 256
)

// Page selects one page of a list.
type Page struct {
	// Cursor is the Info of the previous page's answer; empty for the first page. It is opaque
	// to clients (today: the last item's state key below the list's prefix, e.g. a record id).
	Cursor string `json:"cursor,omitempty"`
	// Limit is the most items to return: 1..MaxPageLimit, 0 for DefaultPageLimit.
	Limit int `json:"limit,omitempty"`
}

// limit validates the page and returns its effective limit.
func (p Page) limit() (int, error) {
	if p.Limit < 0 || p.Limit > MaxPageLimit {
		return 0, codes.Errorf(codes.Invalid, "limit must be between 1 and %d (default %d)", MaxPageLimit, DefaultPageLimit)
	}
	if len(p.Cursor) > maxCursorBytes {
		return 0, codes.Errorf(codes.Invalid, "cursor over %d bytes", maxCursorBytes)
	}
	if p.Limit == 0 {
		return DefaultPageLimit, nil
	}
	return p.Limit, nil
}

// start is the first key a page reads: just after the cursor's key.
func (p Page) start(prefix []byte) []byte {
	if p.Cursor == "" {
		return prefix
	}
	k := make([]byte, 0, len(prefix)+len(p.Cursor)+1)
	return append(append(append(k, prefix...), p.Cursor...), 0)
}

// ListQuery is the data of the account list paths: whose list, and which page.
type ListQuery struct {
	Address tx.Address `json:"address"`
	// Reader and At scope a patient's list (grants) to what Reader may see at At (query_scope.go).
	Reader tx.Address `json:"reader,omitempty"`
	At     time.Time  `json:"at,omitzero"`
	Page
}

// parseListQuery reads a ListQuery, or a bare address (the first page).
func parseListQuery(data []byte) (*ListQuery, error) {
	var q ListQuery
	if len(data) > 0 && data[0] == '{' {
		if err := json.Unmarshal(data, &q); err != nil {
			return nil, codes.Errorf(codes.Malformed, "list query: %v", err)
		}
	} else {
		q.Address = tx.Address(data)
	}
	if err := q.Address.Validate(); err != nil {
		return nil, err
	}
	if _, err := q.limit(); err != nil {
		return nil, err
	}
	return &q, nil
}

// listPage decodes one page of the JSON values under prefix. keep (nil keeps everything) says
// whether an item belongs to the answer and whether the list ends there (items are in key order,
// so a time-ordered list can end at its first item past a bound).
func listPage[T any](view *state.View, prefix []byte, p Page, keep func(*T) (ok, stop bool)) ([]T, string, error) {
	return listPageWith(view, prefix, p, keep, false)
}

// scopedPage is listPage for a reader who sees only the items keep keeps (query_scope.go): its
// cursor is always the key of an item it was shown, never of one it was not, and a page that
// shows nothing has no cursor, as the empty list of an absent patient. It scans up to
// MaxScopedScan entries for a page, so a reader's items farther apart than that are cut off.
func scopedPage[T any](view *state.View, prefix []byte, p Page, keep func(*T) (ok, stop bool)) ([]T, string, error) {
	return listPageWith(view, prefix, p, keep, true)
}

// MaxScopedScan bounds the entries one page of a reader's scoped view of a list reads.
const MaxScopedScan = 100_000

func listPageWith[T any](view *state.View, prefix []byte, p Page, keep func(*T) (ok, stop bool), scoped bool) ([]T, string, error) {
	limit, err := p.limit()
	if err != nil {
		return nil, "", err
	}
	budget := MaxPageScan
	if scoped {
		budget = MaxScopedScan
	}
	out := make([]T, 0, min(limit, 64))
	var last, lastKept, next string
	var derr error
	scanned := 0
	err = view.IterateFrom(prefix, p.start(prefix), func(k, v []byte) bool {
		if len(out) == limit { // full, and more follow
			next = lastKept
			return true
		}
		var x T
		if derr = contracts.DecodeJSON(v, &x); derr != nil {
			return true
		}
		last = string(k[len(prefix):])
		ok, stop := true, false
		if keep != nil {
			ok, stop = keep(&x)
		}
		if stop {
			return true
		}
		if ok {
			out = append(out, x)
			lastKept = last
		}
		if scanned++; scanned >= budget && len(out) < limit {
			if next = last; scoped {
				next = lastKept
			}
			return true
		}
		return false
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, "", codes.Errorf(codes.Internal, "list: %v", err)
	}
	return out, next, nil
}

// pageResp encodes a page, with the next cursor in Info.
func pageResp[T any](items []T, next string, err error) (*abci.ResponseQuery, error) {
	if items == nil && err == nil {
		items = []T{}
	}
	resp, err := jsonResp(items, err)
	if err != nil {
		return nil, err
	}
	resp.Info = next
	return resp, nil
}
