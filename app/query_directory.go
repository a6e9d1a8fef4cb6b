package app

import (
	"encoding/json"
	"strings"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// PathDirectory lists practitioners and organizations (data: DirectoryQuery): the public
// directory a patient picks grantees from. Patients are never listed.
const PathDirectory = "/identity/directory"

// MaxDirectoryName bounds a directory query's name filter.
const MaxDirectoryName = 100

// DirectoryQuery filters the directory: Name matches a part of the name, case-insensitively;
// Role (practitioner or organization) and OrgKind narrow it. Empty filters match all. With All
// false, only accounts a registrar attests at At are listed (a name alone proves nothing: anyone
// registers any name).
type DirectoryQuery struct {
	Name    string        `json:"name,omitempty"`
	Role    identity.Role `json:"role,omitempty"`
	OrgKind string        `json:"org_kind,omitempty"`
	All     bool          `json:"all,omitempty"`
	At      time.Time     `json:"at,omitzero"`
	Page
}

// DirectoryEntry is an account of the directory, with its attestation in force (if any).
type DirectoryEntry struct {
	Address      tx.Address    `json:"address"`
	Role         identity.Role `json:"role"`
	OrgKind      string        `json:"org_kind,omitempty"`
	Name         string        `json:"name"`
	Licence      string        `json:"licence,omitempty"`
	Jurisdiction string        `json:"jurisdiction,omitempty"`
}

func queryDirectory(view *state.View, data []byte) (*abci.ResponseQuery, error) {
	var q DirectoryQuery
	if len(data) > 0 {
		if err := json.Unmarshal(data, &q); err != nil {
			return nil, codes.Errorf(codes.Malformed, "directory query: %v", err)
		}
	}
	if len(q.Name) > MaxDirectoryName {
		return nil, codes.Errorf(codes.Invalid, "name filter over %d bytes", MaxDirectoryName)
	}
	limit, err := q.limit()
	if err != nil {
		return nil, err
	}
	prefix, name := identity.DirectoryPrefix(), strings.ToLower(q.Name)
	out := make([]DirectoryEntry, 0, min(limit, 64))
	var next, last string
	var ierr error
	scanned := 0
	err = view.IterateFrom(prefix, q.start(prefix), func(k, _ []byte) bool {
		if len(out) == limit || scanned == MaxPageScan { // more may follow: go on from the last one seen
			next = last
			return true
		}
		scanned++
		last = string(k[len(prefix):])
		acc, err := identity.GetAccount(view, tx.Address(last))
		if err != nil {
			ierr = err
			return true
		}
		if (q.Role != "" && acc.Role != q.Role) || (q.OrgKind != "" && acc.OrgKind != q.OrgKind) ||
			!strings.Contains(strings.ToLower(acc.Name), name) {
			return false
		}
		e := DirectoryEntry{Address: acc.Address, Role: acc.Role, OrgKind: acc.OrgKind, Name: acc.Name}
		atts, err := identity.Attestations(view, acc.Address)
		if err != nil {
			ierr = err
			return true
		}
		for i := range atts {
			if atts[i].ActiveAt(q.At) {
				e.Licence, e.Jurisdiction = atts[i].Licence, atts[i].Jurisdiction
			}
		}
		if q.All || e.Licence != "" {
			out = append(out, e)
		}
		return false
	})
	return pageResp(out, next, cmpErr(ierr, err))
}
