package identity

import (
	"slices"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Ballots. Registrar changes (here) and network membership changes (contracts/network) are
// decided the same way: a registrar proposes, other registrars vote, and the change executes
// once the votes of current registrars reach Threshold.

// Ballot is the voting state of one proposal; what names it in errors ("proposal",
// "network proposal").
type Ballot struct {
	What      string
	ID        uint64
	Status    string
	ExpiresAt time.Time
	Votes     []tx.Address
}

// CheckVote refuses voter's vote at now on a proposal that is not open, has expired, or already
// has that vote.
func (b Ballot) CheckVote(voter tx.Address, now time.Time) error {
	if b.Status != "open" {
		return codes.Errorf(codes.Invalid, "%s %d is %s", b.What, b.ID, b.Status)
	}
	if !now.Before(b.ExpiresAt) {
		return codes.Errorf(codes.Expired, "%s %d expired", b.What, b.ID)
	}
	if slices.Contains(b.Votes, voter) {
		return codes.Errorf(codes.AlreadyExists, "already voted on %s %d", b.What, b.ID)
	}
	return nil
}

// Count returns how many of votes are by current registrars, how many are needed, and the
// registrars.
func Count(r state.Reader, votes []tx.Address) (valid, needed int, regs []tx.Address, err error) {
	regs, err = Registrars(r)
	if err != nil {
		return 0, 0, nil, err
	}
	for _, v := range votes {
		if slices.Contains(regs, v) {
			valid++
		}
	}
	return valid, Threshold(len(regs)), regs, nil
}
