package network

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Key generation and re-sharing rounds on the ledger (netkey's Pedersen DKG). The ledger is the
// protocol's broadcast channel and its clock. A round opens at the end of a block and runs
// through phases; every party's message for a phase is a transaction signed by its node account,
// accepted only while the round is in that phase. A phase ends at the end of the block in which
// every expected message arrived, or after DKGPhaseBlocks blocks:
//
//	enroll   each party posts a fresh round key (and, for a holder, its release URL); the round
//	         then keeps the parties that enrolled and fixes the threshold from its holders
//	deal     each dealer posts its public polynomial and every holder's share, encrypted
//	respond  each holder posts the dealers whose share it did not get or could not verify
//	         (none: all good; kyber's fast-sync mode, so that a quiet phase ends at once)
//	justify  only if someone complained: those dealers reveal the complained shares
//	result   each holder posts the public key and commitments it computed
//
// When the new threshold of holders posted the same commitments (for a re-sharing, with the
// unchanged public key) the ledger installs them as the network key of the round's epoch, held by
// exactly those holders, and the round's messages leave state. A round that does not get there
// fails and a new one opens at the next block. A fresh round opens when the network has no key
// (a genesis without a dealer); a re-sharing round opens whenever the validators differ from the
// key's holders (a member joins, leaves or changes power); a membership change during a round
// ends it, and the next round takes the new membership.

// Transaction types of a round.
const (
	TypeDKGEnroll  = "network/dkg_enroll"
	TypeDKGDeal    = "network/dkg_deal"
	TypeDKGRespond = "network/dkg_respond"
	TypeDKGJustify = "network/dkg_justify"
	TypeDKGResult  = "network/dkg_result"
)

// Phases of a round, by block.
const (
	PhaseEnroll  = "enroll"
	PhaseDeal    = "deal"
	PhaseRespond = "respond"
	PhaseJustify = "justify"
	PhaseResult  = "result"
	PhaseOver    = "over"
)

// Round statuses.
const (
	RoundOpen   = "open"
	RoundDone   = "done"
	RoundFailed = "failed"
)

// DKGPhaseBlocks is how many blocks a phase waits for missing messages: enough for a node to see
// the previous phase committed and get its message into a block despite a slow proposer.
const DKGPhaseBlocks = 5

// DKGRetryBlocks is how long after a round that left validators out (they did not enroll or
// post the result) the next one tries to take them in.
const DKGRetryBlocks = 100

// Round is the current (or last) key generation round.
type Round struct {
	Epoch        uint64        `json:"epoch"` // the epoch of the key it makes
	Reshare      bool          `json:"reshare"`
	Opened       int64         `json:"opened"` // the height whose end opened it
	Phase        string        `json:"phase"`
	Deadline     int64         `json:"deadline"`             // the last height of the phase
	Posted       int           `json:"posted"`               // messages of the phase so far
	Complained   []uint32      `json:"complained,omitempty"` // dealers some holder complained about
	Nonce        []byte        `json:"nonce"`                // the protocol's session id
	Threshold    int           `json:"threshold"`
	OldThreshold int           `json:"old_threshold,omitempty"`
	Dealers      []RoundMember `json:"dealers"` // re-sharing: the key's holders; fresh: the holders
	Holders      []RoundMember `json:"holders"` // the new group
	Status       string        `json:"status"`
	Reason       string        `json:"reason,omitempty"` // why it failed
	Closed       int64         `json:"closed,omitempty"`
}

// RoundMember is a party of a round: its holder index (in the key it deals from, for a dealer,
// or the key being made, for a holder) and its node.
type RoundMember struct {
	Index uint32     `json:"index"`
	Node  tx.Address `json:"node"`
}

// Enrollment is a party's round key and, for a holder, the URL its node releases shares at.
type Enrollment struct {
	Epoch uint64 `json:"epoch"`
	Key   []byte `json:"key"`
	API   string `json:"api,omitempty"`
}

// DKGDeal, DKGRespond, DKGJustify and DKGResult carry the protocol's messages for a round.
type (
	DKGDeal struct {
		Epoch uint64            `json:"epoch"`
		Deal  netkey.DealBundle `json:"deal"`
	}
	DKGRespond struct {
		Epoch    uint64                `json:"epoch"`
		Response netkey.ResponseBundle `json:"response"`
	}
	DKGJustify struct {
		Epoch         uint64                     `json:"epoch"`
		Justification netkey.JustificationBundle `json:"justification"`
	}
	DKGResult struct {
		Epoch  uint64        `json:"epoch"`
		Public netkey.Public `json:"public"`
	}
)

var (
	roundKey  = []byte(root + "dkg")
	checkKey  = []byte(root + "dkgcheck") // set when membership changed: EndBlock compares holders
	roundData = root + "dkg/"
)

// RoundKey is the state key of the current round.
func RoundKey() []byte { return roundKey }

func roundPrefix(epoch uint64) string { return roundData + contracts.SeqKey(epoch) + "/" }

// EnrollmentKey, DealKey, ResponseKey, JustificationKey and ResultKey are where a round's
// messages are, by party.
func EnrollmentKey(epoch uint64, node tx.Address) []byte {
	return []byte(roundPrefix(epoch) + "e/" + string(node))
}
func DealKey(epoch uint64, dealer uint32) []byte { return indexed(epoch, "d/", dealer) }

func enrolledKey(epoch uint64, key []byte) []byte {
	return []byte(roundPrefix(epoch) + "k/" + hex.EncodeToString(key))
}
func ResponseKey(epoch uint64, holder uint32) []byte {
	return indexed(epoch, "r/", holder)
}
func JustificationKey(epoch uint64, dealer uint32) []byte { return indexed(epoch, "j/", dealer) }
func ResultKey(epoch uint64, node tx.Address) []byte {
	return []byte(roundPrefix(epoch) + "x/" + string(node))
}

func indexed(epoch uint64, kind string, i uint32) []byte {
	return []byte(roundPrefix(epoch) + kind + contracts.SeqKey(uint64(i)))
}

// GetRound reads the current round.
func GetRound(r state.Reader) (*Round, error) {
	return contracts.Load[Round](r, roundKey, "no key generation round")
}

// Expected is how many messages the current phase waits for.
func (r *Round) Expected() int {
	switch r.Phase {
	case PhaseEnroll:
		n := len(r.Holders)
		for _, d := range r.Dealers {
			if r.Holder(d.Node) == nil {
				n++
			}
		}
		return n
	case PhaseDeal:
		return len(r.Dealers)
	case PhaseJustify:
		return len(r.Complained)
	}
	return len(r.Holders) // respond, result
}

// Dealer and Holder return node's place in the round, or nil.
func (r *Round) Dealer(node tx.Address) *RoundMember { return memberOf(r.Dealers, node) }
func (r *Round) Holder(node tx.Address) *RoundMember { return memberOf(r.Holders, node) }

func memberOf(ms []RoundMember, node tx.Address) *RoundMember {
	for i := range ms {
		if ms[i].Node == node {
			return &ms[i]
		}
	}
	return nil
}

// Limits of the messages, beyond netkey's sizes.
func (m *Enrollment) validate() error {
	if err := netkey.CheckPoint(m.Key); err != nil {
		return codes.Errorf(codes.Invalid, "key must be a point of the network key's group: %v", err)
	}
	if m.API != "" {
		return validAPI(m.API)
	}
	return nil
}

func init() {
	handlers[TypeDKGEnroll] = contracts.Decode(enroll)
	handlers[TypeDKGDeal] = contracts.Decode(deal)
	handlers[TypeDKGRespond] = contracts.Decode(respond)
	handlers[TypeDKGJustify] = contracts.Decode(justify)
	handlers[TypeDKGResult] = contracts.Decode(result)
}

// openRound returns the round the signer's message is for, checking it is open, in phase and
// that the signer takes part; wrong parties, epochs and phases are all Unauthorized or Invalid.
func openRound(kv state.KV, ctx contracts.Context, epoch uint64, phase string) (*Round, error) {
	r, err := GetRound(kv)
	if codes.Of(err) == codes.NotFound || (err == nil && (r.Status != RoundOpen || r.Epoch != epoch)) {
		return nil, codes.Errorf(codes.Invalid, "no open key generation round %d", epoch)
	}
	if err != nil {
		return nil, err
	}
	if r.Phase != phase {
		return nil, codes.Errorf(codes.Invalid, "round %d is in its %s phase, not %s", epoch, r.Phase, phase)
	}
	if r.Dealer(ctx.Signer) == nil && r.Holder(ctx.Signer) == nil {
		return nil, codes.Errorf(codes.Unauthorized, "%s takes no part in round %d", ctx.Signer, epoch)
	}
	return r, nil
}

// post stores a party's message, unless it already posted one for the phase, and counts it.
func post(kv state.KV, r *Round, key []byte, v any, what string) error {
	if old, err := kv.Get(key); err != nil || old != nil {
		return cmpErr(err, codes.Errorf(codes.AlreadyExists, "%s already posted", what))
	}
	if err := contracts.PutJSON(kv, key, v); err != nil {
		return err
	}
	r.Posted++
	return contracts.PutJSON(kv, roundKey, r)
}

func enroll(kv state.KV, ctx contracts.Context, m *Enrollment) ([]contracts.Event, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	r, err := openRound(kv, ctx, m.Epoch, PhaseEnroll)
	if err != nil {
		return nil, err
	}
	if r.Holder(ctx.Signer) != nil && m.API == "" {
		return nil, codes.Errorf(codes.Invalid, "a holder enrolls with the api its node releases shares at")
	}
	// One key, one party: a second party enrolling someone's key would take its place in the
	// protocol (kyber finds parties by key).
	taken := enrolledKey(m.Epoch, m.Key)
	if v, err := kv.Get(taken); err != nil || v != nil {
		return nil, cmpErr(err, codes.Errorf(codes.AlreadyExists, "that key is already enrolled in round %d", m.Epoch))
	}
	if err := kv.Set(taken, []byte(ctx.Signer)); err != nil {
		return nil, codes.Errorf(codes.Internal, "record the enrolled key: %v", err)
	}
	return nil, post(kv, r, EnrollmentKey(m.Epoch, ctx.Signer), m, "an enrollment")
}

func deal(kv state.KV, ctx contracts.Context, m *DKGDeal) ([]contracts.Event, error) {
	r, err := openRound(kv, ctx, m.Epoch, PhaseDeal)
	if err != nil {
		return nil, err
	}
	me := r.Dealer(ctx.Signer)
	if me == nil || m.Deal.Dealer != me.Index {
		return nil, codes.Errorf(codes.Unauthorized, "a deal is the signer's own, as a dealer of the round")
	}
	if len(m.Deal.Public) != r.Threshold || len(m.Deal.Shares) > len(r.Holders) {
		return nil, codes.Errorf(codes.Invalid, "a deal has %d commitments and at most %d shares", r.Threshold, len(r.Holders))
	}
	for _, c := range m.Deal.Public {
		if len(c) != netkey.PointBytes {
			return nil, codes.Errorf(codes.Invalid, "a commitment is %d bytes", netkey.PointBytes)
		}
	}
	seen := map[uint32]bool{}
	for _, s := range m.Deal.Shares {
		if memberAt(r.Holders, s.Holder) == nil || seen[s.Holder] || len(s.Share) > netkey.MaxEncryptedShareBytes {
			return nil, codes.Errorf(codes.Invalid, "a deal has one share of at most %d bytes for each holder", netkey.MaxEncryptedShareBytes)
		}
		seen[s.Holder] = true
	}
	return nil, post(kv, r, DealKey(m.Epoch, me.Index), m, "a deal")
}

func respond(kv state.KV, ctx contracts.Context, m *DKGRespond) ([]contracts.Event, error) {
	r, err := openRound(kv, ctx, m.Epoch, PhaseRespond)
	if err != nil {
		return nil, err
	}
	me := r.Holder(ctx.Signer)
	if me == nil || m.Response.Holder != me.Index {
		return nil, codes.Errorf(codes.Unauthorized, "a response is the signer's own, as a holder of the round")
	}
	if !distinctMembers(r.Dealers, m.Response.Complaints) {
		return nil, codes.Errorf(codes.Invalid, "a response names distinct dealers of the round")
	}
	for _, d := range m.Response.Complaints {
		if i, found := slices.BinarySearch(r.Complained, d); !found {
			r.Complained = slices.Insert(r.Complained, i, d)
		}
	}
	return nil, post(kv, r, ResponseKey(m.Epoch, me.Index), m, "a response")
}

func justify(kv state.KV, ctx contracts.Context, m *DKGJustify) ([]contracts.Event, error) {
	r, err := openRound(kv, ctx, m.Epoch, PhaseJustify)
	if err != nil {
		return nil, err
	}
	me := r.Dealer(ctx.Signer)
	if me == nil || m.Justification.Dealer != me.Index {
		return nil, codes.Errorf(codes.Unauthorized, "a justification is the signer's own, as a dealer of the round")
	}
	if _, found := slices.BinarySearch(r.Complained, me.Index); !found {
		return nil, codes.Errorf(codes.Invalid, "no holder complained about dealer %d", me.Index)
	}
	holders := make([]uint32, len(m.Justification.Shares))
	for i, s := range m.Justification.Shares {
		if err := netkey.CheckScalar(s.Share); err != nil {
			return nil, codes.Errorf(codes.Invalid, "a revealed share must be a scalar: %v", err)
		}
		holders[i] = s.Holder
	}
	if len(holders) == 0 || len(holders) > len(r.Holders) || !distinctMembers(r.Holders, holders) {
		return nil, codes.Errorf(codes.Invalid, "a justification reveals shares of distinct holders of the round")
	}
	return nil, post(kv, r, JustificationKey(m.Epoch, me.Index), m, "a justification")
}

func result(kv state.KV, ctx contracts.Context, m *DKGResult) ([]contracts.Event, error) {
	r, err := openRound(kv, ctx, m.Epoch, PhaseResult)
	if err != nil {
		return nil, err
	}
	if r.Holder(ctx.Signer) == nil {
		return nil, codes.Errorf(codes.Unauthorized, "only a holder of the round posts a result")
	}
	if m.Public.Threshold != r.Threshold {
		return nil, codes.Errorf(codes.Invalid, "the round's threshold is %d", r.Threshold)
	}
	if err := m.Public.Validate(); err != nil {
		return nil, codes.Errorf(codes.Invalid, "result: %v", err)
	}
	if r.Reshare {
		cur, err := GetKey(kv)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(cur.Key(), m.Public.Key()) {
			return nil, codes.Errorf(codes.Invalid, "a re-sharing keeps the network's public key")
		}
	}
	return nil, post(kv, r, ResultKey(m.Epoch, ctx.Signer), m, "a result")
}

func memberAt(ms []RoundMember, index uint32) *RoundMember {
	for i := range ms {
		if ms[i].Index == index {
			return &ms[i]
		}
	}
	return nil
}

func distinctMembers(ms []RoundMember, indices []uint32) bool {
	seen := map[uint32]bool{}
	for _, i := range indices {
		if memberAt(ms, i) == nil || seen[i] {
			return false
		}
		seen[i] = true
	}
	return true
}

// EndBlock advances the round at the end of every block: a phase whose messages are all in, or
// whose time is up, gives way to the next; the last installs or fails the round; and a round
// opens when the network needs one. It reads two keys in a block with nothing to do.
func EndBlock(kv state.KV, ctx contracts.Context) ([]contracts.Event, error) {
	r, err := GetRound(kv)
	if err != nil && codes.Of(err) != codes.NotFound {
		return nil, err
	}
	if r != nil && r.Status == RoundOpen {
		if r.Posted < r.Expected() && ctx.Height < r.Deadline {
			return nil, nil
		}
		next := map[string]string{PhaseEnroll: PhaseDeal, PhaseDeal: PhaseRespond, PhaseRespond: PhaseJustify, PhaseJustify: PhaseResult}[r.Phase]
		switch {
		case r.Phase == PhaseResult:
			return finishRound(kv, ctx, r)
		case r.Phase == PhaseEnroll:
			if events, err := fixParties(kv, ctx, r); err != nil || r.Status != RoundOpen {
				return events, err
			}
		case next == PhaseJustify && r.Posted < len(r.Holders):
			// In kyber's fast sync a silent holder counts as complaining about every dealer, and
			// every dealer would reveal the share it dealt it: the sum is that holder's share of
			// the new key, in public. The round ends instead; the next one leaves out a holder
			// that does not enroll.
			return failRound(kv, ctx, r, "a holder did not respond")
		case next == PhaseJustify && len(r.Complained) == 0:
			next = PhaseResult
		}
		r.Phase, r.Deadline, r.Posted = next, ctx.Height+DKGPhaseBlocks, 0
		return nil, contracts.PutJSON(kv, roundKey, r)
	}
	return maybeOpen(kv, ctx, r)
}

// fixParties keeps the parties that enrolled; a round with fewer enrolled holders than its
// threshold (that of all the validators it was opened for), or with fewer dealers than the
// current key's threshold, fails at once.
func fixParties(kv state.KV, ctx contracts.Context, r *Round) ([]contracts.Event, error) {
	enrolled := func(ms []RoundMember) ([]RoundMember, error) {
		var out []RoundMember
		for _, m := range ms {
			v, err := kv.Get(EnrollmentKey(r.Epoch, m.Node))
			if err != nil {
				return nil, codes.Errorf(codes.Internal, "read enrollment: %v", err)
			}
			if v != nil {
				out = append(out, m)
			}
		}
		return out, nil
	}
	var err error
	if r.Holders, err = enrolled(r.Holders); err != nil {
		return nil, err
	}
	if r.Reshare {
		if r.Dealers, err = enrolled(r.Dealers); err != nil {
			return nil, err
		}
	} else {
		r.Dealers = r.Holders
	}
	switch {
	case len(r.Holders) < r.Threshold: // the threshold stays that of every validator
		return failRound(kv, ctx, r, strconv.Itoa(len(r.Holders))+" holders enrolled, fewer than the threshold of "+strconv.Itoa(r.Threshold))
	case r.Reshare && len(r.Dealers) < r.OldThreshold:
		return failRound(kv, ctx, r, "fewer dealers enrolled than the current key's threshold of "+strconv.Itoa(r.OldThreshold))
	}
	return nil, nil
}

// finishRound installs the commitments that at least the threshold of holders posted.
func finishRound(kv state.KV, ctx contracts.Context, r *Round) ([]contracts.Event, error) {
	type vote struct {
		pub   netkey.Public
		nodes []tx.Address
	}
	var votes []vote
	for _, h := range r.Holders { // round order: deterministic
		res, err := contracts.Load[DKGResult](kv, ResultKey(r.Epoch, h.Node), "")
		if codes.Of(err) == codes.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(votes, func(v vote) bool { return slices.EqualFunc(v.pub.Commits, res.Public.Commits, bytes.Equal) })
		if i < 0 {
			votes = append(votes, vote{pub: res.Public})
			i = len(votes) - 1
		}
		votes[i].nodes = append(votes[i].nodes, h.Node)
	}
	i := slices.IndexFunc(votes, func(v vote) bool { return len(v.nodes) >= r.Threshold })
	if i < 0 {
		return failRound(kv, ctx, r, "fewer than "+strconv.Itoa(r.Threshold)+" holders posted the same result")
	}
	key := &Key{Public: votes[i].pub, Height: ctx.Height, Epoch: r.Epoch}
	for _, node := range votes[i].nodes {
		e, err := contracts.Load[Enrollment](kv, EnrollmentKey(r.Epoch, node), "")
		if err != nil {
			return nil, err
		}
		key.Holders = append(key.Holders, Holder{Index: r.Holder(node).Index, Node: node, API: e.API})
	}
	if err := key.Validate(); err != nil {
		return failRound(kv, ctx, r, "the result is not a valid key")
	}
	if err := contracts.PutJSON(kv, keyStateKey, key); err != nil {
		return nil, err
	}
	r.Status, r.Closed = RoundDone, ctx.Height
	if err := closeRound(kv, r); err != nil {
		return nil, err
	}
	if len(key.Holders) < len(r.Holders) { // some holders fell out: try to bring them in later
		if err := markCheck(kv, ctx.Height+DKGRetryBlocks); err != nil {
			return nil, err
		}
	}
	kind := "network.key_generated"
	if r.Reshare {
		kind = "network.key_reshared"
	}
	return []contracts.Event{contracts.NewEvent(kind, "epoch", strconv.FormatUint(r.Epoch, 10),
		"threshold", strconv.Itoa(key.Threshold), "holders", strconv.Itoa(len(key.Holders)))}, nil
}

// failRound ends a round without a key; the next block's EndBlock opens another if still needed.
func failRound(kv state.KV, ctx contracts.Context, r *Round, reason string) ([]contracts.Event, error) {
	r.Status, r.Reason, r.Closed = RoundFailed, reason, ctx.Height
	if err := closeRound(kv, r); err != nil {
		return nil, err
	}
	if err := markCheck(kv, ctx.Height+1); err != nil {
		return nil, err
	}
	return []contracts.Event{contracts.NewEvent("network.dkg_failed", "epoch", strconv.FormatUint(r.Epoch, 10), "reason", reason)}, nil
}

// closeRound stores the closed round and drops its messages.
func closeRound(kv state.KV, r *Round) error {
	var keys [][]byte
	if err := kv.Iterate([]byte(roundPrefix(r.Epoch)), func(k, _ []byte) bool {
		keys = append(keys, slices.Clone(k))
		return false
	}); err != nil {
		return codes.Errorf(codes.Internal, "list the round's messages: %v", err)
	}
	for _, k := range keys {
		if err := kv.Delete(k); err != nil {
			return codes.Errorf(codes.Internal, "drop a round message: %v", err)
		}
	}
	return contracts.PutJSON(kv, roundKey, r)
}

// membershipChanged ends an open round (its parties are stale) and has EndBlock compare the
// key's holders with the validators.
func membershipChanged(kv state.KV, ctx contracts.Context) ([]contracts.Event, error) {
	if err := markCheck(kv, ctx.Height); err != nil {
		return nil, err
	}
	r, err := GetRound(kv)
	if codes.Of(err) == codes.NotFound || (err == nil && r.Status != RoundOpen) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return failRound(kv, ctx, r, "the membership changed")
}

// maybeOpen opens a round when the network has no key, or its holders are not the validators.
func maybeOpen(kv state.KV, ctx contracts.Context, last *Round) ([]contracts.Event, error) {
	v, err := kv.Get(checkKey)
	if err != nil || v == nil || (len(v) == 8 && ctx.Height < int64(binary.BigEndian.Uint64(v))) {
		return nil, err
	}
	if err := kv.Delete(checkKey); err != nil {
		return nil, codes.Errorf(codes.Internal, "clear the key check: %v", err)
	}
	members, err := Members(kv)
	if err != nil {
		return nil, err
	}
	var validators []tx.Address
	for _, m := range members { // address order
		if m.Power > 0 && len(validators) < netkey.MaxHolders {
			validators = append(validators, m.Address)
		}
	}
	if len(validators) == 0 {
		return nil, nil
	}
	epoch := uint64(1)
	if last != nil {
		epoch = last.Epoch + 1
	}
	r := &Round{Opened: ctx.Height, Phase: PhaseEnroll, Deadline: ctx.Height + DKGPhaseBlocks, Status: RoundOpen}
	key, err := GetKey(kv)
	switch {
	case codes.Of(err) == codes.NotFound:
		r.Holders = indexHolders(nil, validators)
	case err != nil:
		return nil, err
	default:
		current := make([]tx.Address, len(key.Holders))
		for i, h := range key.Holders {
			current[i] = h.Node
		}
		slices.Sort(current)
		if slices.Equal(current, validators) && key.Dropped == 0 {
			return nil, nil
		}
		r.Reshare, r.OldThreshold = true, key.Threshold
		epoch = max(epoch, key.Epoch+1)
		for _, h := range key.Holders {
			r.Dealers = append(r.Dealers, RoundMember{Index: h.Index, Node: h.Node})
		}
		r.Holders = indexHolders(key.Holders, validators)
	}
	r.Epoch = epoch
	r.Threshold = netkey.Threshold(len(r.Holders))
	h := sha256.New()
	h.Write([]byte("medchain/network-key-round/v1\n" + ctx.ChainID + "\n"))
	h.Write(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, epoch), uint64(ctx.Height)))
	r.Nonce = h.Sum(nil)
	if err := contracts.PutJSON(kv, roundKey, r); err != nil {
		return nil, err
	}
	kind := "fresh"
	if r.Reshare {
		kind = "reshare"
	}
	return []contracts.Event{contracts.NewEvent("network.dkg_opened", "epoch", strconv.FormatUint(epoch, 10), "kind", kind,
		"holders", strconv.Itoa(len(r.Holders)))}, nil
}

// indexHolders gives each validator its holder index: a current holder keeps its own, a newcomer
// takes the smallest free one.
func indexHolders(current []Holder, validators []tx.Address) []RoundMember {
	used := map[uint32]bool{}
	var out []RoundMember
	for _, v := range validators {
		for _, h := range current {
			if h.Node == v {
				used[h.Index] = true
				out = append(out, RoundMember{Index: h.Index, Node: v})
			}
		}
	}
	next := uint32(1)
	for _, v := range validators {
		if slices.ContainsFunc(out, func(m RoundMember) bool { return m.Node == v }) {
			continue
		}
		for used[next] {
			next++
		}
		used[next] = true
		out = append(out, RoundMember{Index: next, Node: v})
	}
	slices.SortFunc(out, func(a, b RoundMember) int { return int(a.Index) - int(b.Index) })
	return out
}

// NeedsKeyCheck marks a genesis without a network key for a fresh round at the first block.
func NeedsKeyCheck(kv state.KV) error { return markCheck(kv, 0) }

// markCheck has EndBlock compare the key's holders with the validators from height on (an
// earlier mark wins).
func markCheck(kv state.KV, height int64) error {
	if v, err := kv.Get(checkKey); err != nil || (len(v) == 8 && int64(binary.BigEndian.Uint64(v)) <= height) {
		return err
	}
	if err := kv.Set(checkKey, binary.BigEndian.AppendUint64(nil, uint64(max(height, 0)))); err != nil {
		return codes.Errorf(codes.Internal, "mark the key for a check: %v", err)
	}
	return nil
}

// Deals, Responses and Justifications list a round's posted messages, by index.
func Deals(r state.Reader, epoch uint64) ([]*netkey.DealBundle, error) {
	ms, err := listRound[DKGDeal](r, epoch, "d/")
	out := make([]*netkey.DealBundle, len(ms))
	for i := range ms {
		out[i] = &ms[i].Deal
	}
	return out, err
}

func Responses(r state.Reader, epoch uint64) ([]*netkey.ResponseBundle, error) {
	ms, err := listRound[DKGRespond](r, epoch, "r/")
	out := make([]*netkey.ResponseBundle, len(ms))
	for i := range ms {
		out[i] = &ms[i].Response
	}
	return out, err
}

func Justifications(r state.Reader, epoch uint64) ([]*netkey.JustificationBundle, error) {
	ms, err := listRound[DKGJustify](r, epoch, "j/")
	out := make([]*netkey.JustificationBundle, len(ms))
	for i := range ms {
		out[i] = &ms[i].Justification
	}
	return out, err
}

func listRound[T any](r state.Reader, epoch uint64, kind string) ([]T, error) {
	var out []T
	var derr error
	err := r.Iterate([]byte(roundPrefix(epoch)+kind), func(_, v []byte) bool {
		var m T
		if derr = contracts.DecodeJSON(v, &m); derr != nil {
			return true
		}
		out = append(out, m)
		return false
	})
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "list the round's messages: %v", err)
	}
	return out, derr
}
