package network

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"strconv"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Handles reports whether typ is a network transaction.
func Handles(typ string) bool { return handlers[typ] != nil }

var handlers = map[string]contracts.Handler{
	TypePropose: contracts.Decode(propose), TypeVote: contracts.Decode(vote),
}

// Deliver executes a network transaction.
func Deliver(kv state.KV, ctx contracts.Context, typ string, raw json.RawMessage) ([]contracts.Event, error) {
	h := handlers[typ]
	if h == nil {
		return nil, codes.Errorf(codes.UnknownType, "network has no transaction %q", typ)
	}
	return h(kv, ctx, raw)
}

// InitGenesis makes every genesis validator a member, in genesis order.
func InitGenesis(kv state.KV, vals []Member) error {
	for i := range vals {
		if err := contracts.PutJSON(kv, MemberKey(vals[i].Address), &vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the message on its own.
func (m *Propose) Validate() error {
	if len(m.PubKey) != ed25519.PublicKeySize {
		return codes.Errorf(codes.Invalid, "pub_key must be a 32-byte Ed25519 consensus key")
	}
	if m.Power < 0 || m.Power > MaxPower {
		return codes.Errorf(codes.Invalid, "power must be 0..%d", MaxPower)
	}
	switch m.Action {
	case ActionAdd:
		if err := contracts.Text("name", m.Name, 1, MaxNameBytes); err != nil {
			return err
		}
	case ActionRemove, ActionPower:
	case ActionRotate:
		if len(m.NewPubKey) != ed25519.PublicKeySize || bytes.Equal(m.NewPubKey, m.PubKey) {
			return codes.Errorf(codes.Invalid, "new_pub_key must be another 32-byte Ed25519 key")
		}
	default:
		return codes.Errorf(codes.Invalid, "action must be add, remove, power or rotate")
	}
	if m.Action != ActionRotate && len(m.NewPubKey) != 0 {
		return codes.Errorf(codes.Invalid, "new_pub_key is only for rotate")
	}
	return nil
}

func propose(kv state.KV, ctx contracts.Context, m *Propose) ([]contracts.Event, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if err := requireRegistrar(kv, ctx.Signer); err != nil {
		return nil, err
	}
	if err := check(kv, m); err != nil { // refuse at once what could not be executed now
		return nil, err
	}
	id, err := contracts.NextSeq(kv, proposalSeq)
	if err != nil {
		return nil, err
	}
	p := &Proposal{ID: id, Change: *m, Proposer: ctx.Signer, Status: "open",
		CreatedAt: ctx.Time, ExpiresAt: ctx.Time.Add(ProposalLifetime)}
	events := []contracts.Event{contracts.NewEvent("network.proposed", "proposal", strconv.FormatUint(id, 10),
		"action", m.Action, "node", string(tx.AddressOf(m.PubKey)))}
	more, err := castVote(kv, ctx, p)
	return append(events, more...), err
}

func vote(kv state.KV, ctx contracts.Context, m *Vote) ([]contracts.Event, error) {
	if err := requireRegistrar(kv, ctx.Signer); err != nil {
		return nil, err
	}
	p, err := GetProposal(kv, m.Proposal)
	if err != nil {
		return nil, err
	}
	if err := (identity.Ballot{What: "network proposal", ID: p.ID, Status: p.Status, ExpiresAt: p.ExpiresAt, Votes: p.Votes}).CheckVote(ctx.Signer, ctx.Time); err != nil {
		return nil, err
	}
	return castVote(kv, ctx, p)
}

// castVote records the signer's vote and executes the change once two thirds of the current
// registrars voted for it (votes of former registrars do not count).
func castVote(kv state.KV, ctx contracts.Context, p *Proposal) ([]contracts.Event, error) {
	p.Votes = append(p.Votes, ctx.Signer)
	valid, needed, _, err := identity.Count(kv, p.Votes)
	if err != nil {
		return nil, err
	}
	events := []contracts.Event{contracts.NewEvent("network.vote", "proposal", strconv.FormatUint(p.ID, 10),
		"voter", string(ctx.Signer), "votes", strconv.Itoa(valid), "needed", strconv.Itoa(needed))}
	if valid >= needed {
		more, err := execute(kv, ctx, &p.Change)
		if err != nil {
			return nil, err
		}
		events = append(events, more...)
		if more, err = membershipChanged(kv, ctx); err != nil {
			return nil, err
		}
		events = append(events, more...)
		p.Status = "executed"
	}
	return events, contracts.PutJSON(kv, ProposalKey(p.ID), p)
}

func requireRegistrar(r state.Reader, a tx.Address) error {
	ok, err := identity.IsRegistrar(r, a)
	if err != nil {
		return err
	}
	if !ok {
		return codes.Errorf(codes.Unauthorized, "only a registrar may propose or approve network changes")
	}
	return nil
}

// check reports whether the change can be executed on the current membership.
func check(r state.Reader, m *Propose) error {
	addr := tx.AddressOf(m.PubKey)
	member, err := GetMember(r, addr)
	if err != nil && codes.Of(err) != codes.NotFound {
		return err
	}
	if m.Action == ActionAdd {
		if member != nil {
			return codes.Errorf(codes.AlreadyExists, "node %s is already a member", addr)
		}
		if members, err := Members(r); err != nil || len(members) >= MaxMembers {
			return cmpErr(err, codes.Errorf(codes.TooLarge, "the network has %d members, the most it takes", MaxMembers))
		}
		return canBeNodeAccount(r, addr)
	}
	if member == nil {
		return err
	}
	switch m.Action {
	case ActionRemove:
		if member.Power > 0 {
			return keepsAValidator(r, addr)
		}
	case ActionPower:
		if m.Power == member.Power {
			return codes.Errorf(codes.Invalid, "node %s already has power %d", addr, m.Power)
		}
		if m.Power == 0 {
			return keepsAValidator(r, addr)
		}
	case ActionRotate:
		to := tx.AddressOf(m.NewPubKey)
		if _, err := GetMember(r, to); err == nil {
			return codes.Errorf(codes.AlreadyExists, "node %s is already a member", to)
		}
		return canBeNodeAccount(r, to)
	}
	return nil
}

// cmpErr is err if set, else limit.
func cmpErr(err, limit error) error {
	if err != nil {
		return err
	}
	return limit
}

// canBeNodeAccount refuses a consensus key whose address is another kind of account.
func canBeNodeAccount(r state.Reader, addr tx.Address) error {
	acc, err := identity.GetAccount(r, addr)
	switch {
	case codes.Of(err) == codes.NotFound:
		return nil
	case err != nil:
		return err
	case acc.Role != identity.RoleNode && acc.Role != identity.RoleRetiredNode:
		return codes.Errorf(codes.Invalid, "key's address %s is a %s account", addr, acc.Role)
	}
	return nil
}

// keepsAValidator refuses a change that would leave no voting member besides leaving.
func keepsAValidator(r state.Reader, leaving tx.Address) error {
	members, err := Members(r)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.Address != leaving && m.Power > 0 {
			return nil
		}
	}
	return codes.Errorf(codes.Invalid, "the last validator cannot leave or lose its power")
}

// execute applies a change that check allows.
func execute(kv state.KV, ctx contracts.Context, m *Propose) ([]contracts.Event, error) {
	if err := check(kv, m); err != nil {
		return nil, err
	}
	addr := tx.AddressOf(m.PubKey)
	switch m.Action {
	case ActionAdd:
		return admit(kv, ctx, Member{Address: addr, PubKey: m.PubKey, Power: m.Power, Name: m.Name, AddedHeight: ctx.Height})
	case ActionRemove:
		member, _ := GetMember(kv, addr)
		if err := dropHolder(kv, addr); err != nil {
			return nil, err
		}
		return retire(kv, member)
	case ActionPower:
		member, _ := GetMember(kv, addr)
		member.Power = m.Power
		if err := contracts.PutJSON(kv, MemberKey(addr), member); err != nil {
			return nil, err
		}
		return []contracts.Event{updateEvent(member.PubKey, m.Power)}, nil
	default: // ActionRotate
		member, _ := GetMember(kv, addr)
		events, err := retire(kv, member)
		if err != nil {
			return nil, err
		}
		more, err := admit(kv, ctx, Member{Address: tx.AddressOf(m.NewPubKey), PubKey: m.NewPubKey, Power: member.Power,
			Name: member.Name, AddedHeight: ctx.Height})
		if err != nil {
			return nil, err
		}
		return append(events, more...), moveHolder(kv, addr, tx.AddressOf(m.NewPubKey))
	}
}

// admit makes a node a member with an account of role node.
func admit(kv state.KV, ctx contracts.Context, m Member) ([]contracts.Event, error) {
	if err := contracts.PutJSON(kv, MemberKey(m.Address), &m); err != nil {
		return nil, err
	}
	acc, err := identity.GetAccount(kv, m.Address)
	if codes.Of(err) == codes.NotFound {
		acc, err = &identity.Account{Address: m.Address, Name: "node " + m.Name, SigningKey: m.PubKey, CreatedHeight: ctx.Height}, nil
	}
	if err != nil {
		return nil, err
	}
	acc.Role = identity.RoleNode
	if err := identity.PutAccount(kv, acc); err != nil {
		return nil, err
	}
	events := []contracts.Event{contracts.NewEvent("network.admitted", "node", string(m.Address), "name", m.Name,
		"power", strconv.FormatInt(m.Power, 10))}
	if m.Power > 0 {
		events = append(events, updateEvent(m.PubKey, m.Power))
	}
	return events, nil
}

// retire removes a member and retires its account.
func retire(kv state.KV, m *Member) ([]contracts.Event, error) {
	if err := kv.Delete(MemberKey(m.Address)); err != nil {
		return nil, codes.Errorf(codes.Internal, "delete member: %v", err)
	}
	acc, err := identity.GetAccount(kv, m.Address)
	if err != nil {
		return nil, err
	}
	acc.Role = identity.RoleRetiredNode
	if err := identity.PutAccount(kv, acc); err != nil {
		return nil, err
	}
	events := []contracts.Event{contracts.NewEvent("network.retired", "node", string(m.Address))}
	if m.Power > 0 {
		events = append(events, updateEvent(m.PubKey, 0))
	}
	return events, nil
}

func updateEvent(pub ed25519.PublicKey, power int64) contracts.Event {
	return contracts.NewEvent(UpdateEvent, "pub_key", KeyString(pub), "power", strconv.FormatInt(power, 10))
}
