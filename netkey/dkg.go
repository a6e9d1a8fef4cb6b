package netkey

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"go.dedis.ch/kyber/v4"
	"go.dedis.ch/kyber/v4/share"
	dkg "go.dedis.ch/kyber/v4/share/dkg/pedersen"
	"go.dedis.ch/kyber/v4/sign/schnorr"
)

// Distributed key generation and re-sharing: kyber's Pedersen DKG (share/dkg/pedersen), run
// over the ledger. A fresh round makes a new key that no single party ever knows; a re-sharing
// round hands the current key to a new group of holders (the public key stays, the sharing
// polynomial and every holder's share change, so old shares no longer combine with new ones).
// This file is the wire form of the protocol's messages and a Participant that drives one
// party's kyber generator through the phases; which messages exist and when is the ledger's
// business (contracts/network).
//
// Indices here are holder indices, from 1, as in Share and Holder; kyber counts from 0.

// DKGNonceBytes is the size of a round's session id.
const DKGNonceBytes = dkg.NonceLength

// MaxEncryptedShareBytes bounds one encrypted share in a deal (kyber's ECIES: a point, an
// AES-GCM nonce-less ciphertext of a scalar and its tag).
const MaxEncryptedShareBytes = 128

// DKGMember is a party of a round: its holder index and its public DKG key for the round.
type DKGMember struct {
	Index uint32
	Key   []byte // a point: DKGKey.Public
}

// DKGRound is what every party agrees on before dealing, all read from the ledger.
type DKGRound struct {
	Nonce        []byte      // DKGNonceBytes, unique per round
	Dealers      []DKGMember // re-sharing: current holders that deal their shares; fresh: nil
	Holders      []DKGMember // the new group
	Threshold    int         // of the new group
	OldThreshold int         // re-sharing: the current key's threshold
	Current      *Public     // re-sharing: the current key
}

// DealBundle is one dealer's message: its public polynomial and a share for each holder, each
// encrypted to that holder's DKG key.
type DealBundle struct {
	Dealer uint32       `json:"dealer"`
	Public [][]byte     `json:"public"`
	Shares []DealtShare `json:"shares"`
}

// DealtShare is one holder's encrypted share in a deal.
type DealtShare struct {
	Holder uint32 `json:"holder"`
	Share  []byte `json:"share"`
}

// ResponseBundle is one holder's complaints: the dealers whose share it did not get or could not
// verify. A holder with none sends nothing.
type ResponseBundle struct {
	Holder     uint32   `json:"holder"`
	Complaints []uint32 `json:"complaints"`
}

// JustificationBundle is a dealer's answer to complaints: the complained shares in clear, which every
// party checks against the dealer's public polynomial.
type JustificationBundle struct {
	Dealer uint32          `json:"dealer"`
	Shares []RevealedShare `json:"shares"`
}

// RevealedShare is a share a dealer revealed to answer a complaint.
type RevealedShare struct {
	Holder uint32 `json:"holder"`
	Share  []byte `json:"share"`
}

// DKGKey is a party's secret key for one round: it decrypts the shares dealt to it. It is
// fresh for every round and never stored, so nothing learned about it outlives the round.
type DKGKey struct{ secret kyber.Scalar }

// NewDKGKey makes a fresh round key.
func NewDKGKey() *DKGKey { return &DKGKey{secret: suite.Scalar().Pick(suite.RandomStream())} }

// Public is the key's public point, which the party enrolls on the ledger.
func (k *DKGKey) Public() []byte { return mustMarshal(suite.Point().Mul(k.secret, nil)) }

// CheckPoint reports whether b is a point the network accepts as a key: canonical, of the
// prime-order group and not the identity.
func CheckPoint(b []byte) error {
	p, err := pointOf(b)
	if err == nil && p.Equal(suite.Point().Null()) {
		err = errors.New("the identity")
	}
	return err
}

// CheckScalar reports whether b is a canonical scalar encoding.
func CheckScalar(b []byte) error {
	s, err := scalarOf(b)
	if err != nil {
		return err
	}
	if !slices.Equal(mustMarshal(s), b) {
		return errors.New("not a reduced scalar")
	}
	return nil
}

// Participant is one party's run of a round. Its methods follow the protocol's order: Deal
// (dealers), Respond, Justify, Finish; each takes every message of the previous phase as the
// ledger committed them.
type Participant struct {
	gen      *dkg.DistKeyGenerator
	round    *DKGRound
	dealers  []DKGMember // who deals: the round's dealers, or its holders in a fresh round
	receives bool        // a holder of the new key (a dealer leaving the group is not)
	result   *dkg.Result
}

// DKGResult is a holder's outcome: the new key's public commitments and its own share.
type DKGResult struct {
	Public *Public
	Share  *Share
}

// NewParticipant starts key's party in round; current is its share of the current key when it
// deals in a re-sharing round, else nil.
func NewParticipant(round *DKGRound, key *DKGKey, current *Share) (*Participant, error) {
	if len(round.Nonce) != DKGNonceBytes {
		return nil, errors.New("netkey: a round's nonce is 32 bytes")
	}
	holders, err := kyberNodes(round.Holders)
	if err != nil {
		return nil, fmt.Errorf("netkey: holders: %w", err)
	}
	c := &dkg.Config{Suite: suite, Longterm: key.secret, NewNodes: holders, Threshold: uint32(round.Threshold),
		Nonce: round.Nonce, Auth: schnorr.NewScheme(suite), FastSync: true}
	if round.Current != nil {
		if c.OldNodes, err = kyberNodes(round.Dealers); err != nil {
			return nil, fmt.Errorf("netkey: dealers: %w", err)
		}
		c.OldThreshold = uint32(round.OldThreshold)
		poly, err := round.Current.poly()
		if err != nil {
			return nil, err
		}
		_, commits := poly.Info()
		if current != nil {
			x, err := scalarOf(current.Secret)
			if err != nil || current.Index < 1 {
				return nil, errors.New("netkey: malformed share")
			}
			c.Share = &dkg.DistKeyShare{Commits: commits, Share: &share.PriShare{I: current.Index - 1, V: x}}
		} else {
			c.PublicCoeffs = commits
		}
	}
	gen, err := dkg.NewDistKeyHandler(c)
	if err != nil {
		return nil, fmt.Errorf("netkey: start the round: %w", err)
	}
	p := &Participant{gen: gen, round: round, dealers: round.Dealers}
	if round.Current == nil {
		p.dealers = round.Holders
	}
	mine := key.Public()
	p.receives = slices.ContainsFunc(round.Holders, func(m DKGMember) bool { return slices.Equal(m.Key, mine) })
	return p, nil
}

func kyberNodes(ms []DKGMember) ([]dkg.Node, error) {
	out := make([]dkg.Node, len(ms))
	for i, m := range ms {
		if slices.ContainsFunc(ms[:i], func(o DKGMember) bool { return o.Index == m.Index || bytes.Equal(o.Key, m.Key) }) {
			return nil, fmt.Errorf("member %d: an index or key used twice", m.Index)
		}
		p, err := pointOf(m.Key)
		if err != nil || m.Index < 1 {
			return nil, fmt.Errorf("member %d: a bad index or key", m.Index)
		}
		out[i] = dkg.Node{Index: m.Index - 1, Public: p}
	}
	return out, nil
}

// Deal makes this dealer's deal.
func (p *Participant) Deal() (*DealBundle, error) {
	b, err := p.gen.Deals()
	if err != nil {
		return nil, fmt.Errorf("netkey: deal: %w", err)
	}
	d := &DealBundle{Dealer: b.DealerIndex + 1}
	for _, c := range b.Public {
		d.Public = append(d.Public, mustMarshal(c))
	}
	for _, s := range b.Deals {
		d.Shares = append(d.Shares, DealtShare{Holder: s.ShareIndex + 1, Share: s.EncryptedShare})
	}
	return d, nil
}

// Respond processes every deal and returns this holder's response: the dealers it complains
// about, none when all is well. A dealer leaving the group has nothing to respond (nil).
func (p *Participant) Respond(deals []*DealBundle) (*ResponseBundle, error) {
	if !p.receives {
		return nil, nil
	}
	var bundles []*dkg.DealBundle
	for _, d := range deals {
		b := &dkg.DealBundle{DealerIndex: d.Dealer - 1, SessionID: p.round.Nonce}
		for _, c := range d.Public {
			pt, err := pointOf(c)
			if err != nil {
				b.Public = nil // kyber evicts a dealer without a well-formed polynomial
				break
			}
			b.Public = append(b.Public, pt)
		}
		for _, s := range d.Shares {
			b.Deals = append(b.Deals, dkg.Deal{ShareIndex: s.Holder - 1, EncryptedShare: s.Share})
		}
		if d.Dealer >= 1 {
			bundles = append(bundles, b)
		}
	}
	rb, err := p.gen.ProcessDeals(bundles)
	if err != nil || rb == nil {
		return nil, wrapErr("respond", err)
	}
	r := &ResponseBundle{Holder: rb.ShareIndex + 1}
	for _, c := range rb.Responses {
		if c.Status == dkg.Complaint {
			r.Complaints = append(r.Complaints, c.DealerIndex+1)
		}
	}
	return r, nil
}

// Justify processes every holder's response. With no complaint anywhere, a holder is done at
// once (Finish returns its result without justifications); a dealer complained about returns
// its justification. A dealer leaving the group is done after dealing (kyber's leaving dealers
// take no part after the deal), and returns nil.
func (p *Participant) Justify(responses []*ResponseBundle) (*JustificationBundle, error) {
	if !p.receives {
		return nil, nil
	}
	var bundles []*dkg.ResponseBundle
	for _, r := range responses {
		if r.Holder < 1 {
			continue
		}
		b := &dkg.ResponseBundle{ShareIndex: r.Holder - 1, SessionID: p.round.Nonce}
		for _, d := range p.dealers { // fast sync: a status for every dealer
			st := dkg.Success
			if slices.Contains(r.Complaints, d.Index) {
				st = dkg.Complaint
			}
			b.Responses = append(b.Responses, dkg.Response{DealerIndex: d.Index - 1, Status: st})
		}
		bundles = append(bundles, b)
	}
	res, jb, err := p.gen.ProcessResponses(bundles)
	if err != nil {
		return nil, wrapErr("process complaints", err)
	}
	p.result = res
	if jb == nil {
		return nil, nil
	}
	j := &JustificationBundle{Dealer: jb.DealerIndex + 1}
	for _, s := range jb.Justifications {
		j.Shares = append(j.Shares, RevealedShare{Holder: s.ShareIndex + 1, Share: mustMarshal(s.Share)})
	}
	return j, nil
}

// Finish processes the justifications and returns this holder's result. A party that leaves
// the group gets nil.
func (p *Participant) Finish(justifications []*JustificationBundle) (*DKGResult, error) {
	if !p.receives {
		return nil, nil
	}
	res := p.result
	if res == nil {
		var bundles []*dkg.JustificationBundle
		for _, j := range justifications {
			if j.Dealer < 1 {
				continue
			}
			b := &dkg.JustificationBundle{DealerIndex: j.Dealer - 1, SessionID: p.round.Nonce}
			for _, s := range j.Shares {
				x, err := scalarOf(s.Share)
				if err != nil || s.Holder < 1 {
					continue
				}
				b.Justifications = append(b.Justifications, dkg.Justification{ShareIndex: s.Holder - 1, Share: x})
			}
			bundles = append(bundles, b)
		}
		var err error
		if res, err = p.gen.ProcessJustifications(bundles); err != nil {
			return nil, wrapErr("finish", err)
		}
	}
	if res == nil {
		return nil, nil
	}
	pub := &Public{Threshold: len(res.Key.Commits)}
	for _, c := range res.Key.Commits {
		pub.Commits = append(pub.Commits, mustMarshal(c))
	}
	s := &Share{Index: res.Key.Share.I + 1, Secret: mustMarshal(res.Key.Share.V)}
	if err := pub.Check(s); err != nil {
		return nil, fmt.Errorf("netkey: the round's result does not hold together: %w", err)
	}
	return &DKGResult{Public: pub, Share: s}, nil
}

func wrapErr(phase string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("netkey: %s: %w", phase, err)
}
