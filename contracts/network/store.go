package network

import (
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

const root = "nw/"

var (
	memberPrefix = []byte(root + "m/")
	proposalSeq  = []byte(root + "seq/p")
)

// MemberKey is the state key of a member, by the address of its consensus key.
func MemberKey(a tx.Address) []byte { return append(append([]byte{}, memberPrefix...), a...) }

// ProposalKey is the state key of a proposal.
func ProposalKey(id uint64) []byte { return []byte(root + "p/" + contracts.SeqKey(id)) }

// GetMember reads a member.
func GetMember(r state.Reader, a tx.Address) (*Member, error) {
	return contracts.Load[Member](r, MemberKey(a), "node %s is not a member", a)
}

// Members lists the members in address order.
func Members(r state.Reader) ([]Member, error) {
	var out []Member
	var derr error
	err := r.Iterate(memberPrefix, func(_, v []byte) bool {
		var m Member
		if derr = contracts.DecodeJSON(v, &m); derr != nil {
			return true
		}
		out = append(out, m)
		return false
	})
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "list members: %v", err)
	}
	return out, derr
}

// GetProposal reads a proposal.
func GetProposal(r state.Reader, id uint64) (*Proposal, error) {
	return contracts.Load[Proposal](r, ProposalKey(id), "network proposal %d not found", id)
}
