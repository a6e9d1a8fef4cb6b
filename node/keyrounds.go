package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/fsutil"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// keyShares is this node's share of the network key, as the release API uses it. A round that
// installs a new key epoch swaps it; a node that no longer holds the key deletes it.
type keyShares struct {
	home string
	node tx.Address
	cur  atomic.Pointer[api.KeyShare]
	log  *slog.Logger
}

func newKeyShares(home string, node tx.Address, log *slog.Logger) (*keyShares, error) {
	k := &keyShares{home: home, node: node, log: log}
	s, err := LoadNetworkShare(home)
	if err != nil {
		return nil, err
	}
	if s != nil {
		k.cur.Store(&api.KeyShare{Share: s, Node: node})
	}
	return k, nil
}

// get is the current share, or nil.
func (k *keyShares) get() *api.KeyShare { return k.cur.Load() }

// install makes s the node's share: written durably first, then served.
func (k *keyShares) install(s *netkey.Share) error {
	raw, _ := json.Marshal(s)
	if err := fsutil.WriteFileAtomic(NetworkShareFile(k.home), raw, 0o600); err != nil {
		return fmt.Errorf("write the network key share: %w", err)
	}
	k.cur.Store(&api.KeyShare{Share: s, Node: k.node})
	return nil
}

// drop deletes a share the network no longer uses: served no more, then gone from disk.
func (k *keyShares) drop() error {
	k.cur.Store(nil)
	if err := os.Remove(NetworkShareFile(k.home)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete the old network key share: %w", err)
	}
	return nil
}

// pendingShareFile holds a share a round computed until the ledger installs its key.
func pendingShareFile(home string) string {
	return filepath.Join(home, "config", "network_key_share.next.json")
}

// Stages of this node's run of a round.
const (
	stageNone = iota
	stageDealt
	stageResponded
	stageJustified
	stageFinished
)

// keyRounds is this node's side of the network key's rounds (contracts/network/dkg.go): from
// committed state it works out the message its node account owes the current phase, runs the
// kyber generator in memory, keeps a computed share until the ledger installs its key, and then
// swaps the release API over to it (or deletes the node's share when it is no longer a holder).
// A node that restarts during a round sits that round out: its round key lived only in memory.
type keyRounds struct {
	store  *state.Store
	node   tx.Address
	api    string // where this node releases shares
	shares *keyShares
	log    *slog.Logger

	mu      sync.Mutex
	epoch   uint64
	key     *netkey.DKGKey
	part    *netkey.Participant
	stage   int
	sitOut  bool
	msgs    map[string]any // the phase's message, sent until committed
	pending *netkey.Share  // computed, not yet installed
}

// newKeyRounds resumes the node's rounds; api is where it releases shares.
func newKeyRounds(store *state.Store, home, api string, shares *keyShares, log *slog.Logger) (*keyRounds, error) {
	k := &keyRounds{store: store, node: shares.node, api: api, shares: shares, log: log}
	raw, err := os.ReadFile(pendingShareFile(home))
	switch {
	case err == nil:
		var s netkey.Share
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decode %s: %w", pendingShareFile(home), err)
		}
		k.pending = &s
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read the pending network key share: %w", err)
	}
	return k, nil
}

// next returns the transaction this node owes the current round, if any (type "" for none).
func (k *keyRounds) next() (string, any, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if h, _ := k.store.LastCommit(); h == 0 {
		return "", nil, nil // nothing committed yet
	}
	v, err := k.store.At(0)
	if err != nil {
		return "", nil, err
	}
	if err := k.syncShare(v); err != nil {
		return "", nil, err
	}
	r, err := network.GetRound(v)
	if codes.Of(err) == codes.NotFound {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	if r.Epoch != k.epoch {
		k.epoch, k.key, k.part, k.stage, k.sitOut, k.msgs = r.Epoch, nil, nil, stageNone, false, map[string]any{}
	}
	dealer, holder := r.Dealer(k.node), r.Holder(k.node)
	if r.Status != network.RoundOpen || k.sitOut || (dealer == nil && holder == nil) {
		return "", nil, nil
	}
	if err := k.advance(v, r, dealer, holder); err != nil {
		k.sitOut = true
		return "", nil, fmt.Errorf("key round %d: %w (this node sits the round out)", r.Epoch, err)
	}
	m := k.msgs[r.Phase]
	if m == nil {
		return "", nil, nil
	}
	var typ string
	var key []byte
	switch r.Phase {
	case network.PhaseEnroll:
		typ, key = network.TypeDKGEnroll, network.EnrollmentKey(r.Epoch, k.node)
	case network.PhaseDeal:
		typ, key = network.TypeDKGDeal, network.DealKey(r.Epoch, dealer.Index)
	case network.PhaseRespond:
		typ, key = network.TypeDKGRespond, network.ResponseKey(r.Epoch, holder.Index)
	case network.PhaseJustify:
		typ, key = network.TypeDKGJustify, network.JustificationKey(r.Epoch, dealer.Index)
	default:
		typ, key = network.TypeDKGResult, network.ResultKey(r.Epoch, k.node)
	}
	if posted, err := v.Get(key); err != nil || posted != nil {
		return "", nil, err
	}
	return typ, m, nil
}

// advance runs this node's generator as far as committed state allows and leaves the current
// phase's message in k.msgs. Each generator step needs the previous phase closed, which the
// round's phase says; a node that is late catches up through the steps it missed (its late
// messages are simply not sent).
func (k *keyRounds) advance(v *state.View, r *network.Round, dealer, holder *network.RoundMember) error {
	if r.Phase == network.PhaseEnroll {
		posted, err := v.Get(network.EnrollmentKey(r.Epoch, k.node))
		if err != nil {
			return err
		}
		if posted != nil && k.key == nil {
			return errors.New("enrolled before a restart")
		}
		if k.key == nil {
			k.key = netkey.NewDKGKey()
			e := &network.Enrollment{Epoch: r.Epoch, Key: k.key.Public()}
			if holder != nil {
				e.API = k.api
			}
			k.msgs[network.PhaseEnroll] = e
		}
		return nil
	}
	if k.key == nil {
		return errors.New("not enrolled")
	}
	if k.part == nil {
		part, deals, err := k.participant(v, r, dealer)
		if err != nil {
			return err
		}
		k.part = part
		if !deals {
			k.stage = stageDealt // nothing to deal
		}
	}
	phase := r.Phase
	if k.stage == stageNone {
		if phase != network.PhaseDeal {
			return errors.New("missed the deal phase")
		}
		d, err := k.part.Deal()
		if err != nil {
			return err
		}
		k.msgs[network.PhaseDeal] = &network.DKGDeal{Epoch: r.Epoch, Deal: *d}
		k.stage = stageDealt
	}
	if k.stage == stageDealt && phase != network.PhaseDeal {
		deals, err := network.Deals(v, r.Epoch)
		if err != nil {
			return err
		}
		resp, err := k.part.Respond(deals)
		if err != nil {
			return err
		}
		if resp != nil {
			k.msgs[network.PhaseRespond] = &network.DKGRespond{Epoch: r.Epoch, Response: *resp}
		}
		k.stage = stageResponded
	}
	if k.stage == stageResponded && (phase == network.PhaseJustify || phase == network.PhaseResult) {
		responses, err := network.Responses(v, r.Epoch)
		if err != nil {
			return err
		}
		j, err := k.part.Justify(responses)
		if err != nil {
			return err
		}
		if j != nil {
			k.msgs[network.PhaseJustify] = &network.DKGJustify{Epoch: r.Epoch, Justification: *j}
		}
		k.stage = stageJustified
	}
	if k.stage == stageJustified && phase == network.PhaseResult && holder != nil {
		justs, err := network.Justifications(v, r.Epoch)
		if err != nil {
			return err
		}
		res, err := k.part.Finish(justs)
		if err != nil {
			return err
		}
		k.stage = stageFinished
		if res != nil {
			res.Share.Epoch = r.Epoch
			raw, _ := json.Marshal(res.Share)
			if err := fsutil.WriteFileAtomic(pendingShareFile(k.shares.home), raw, 0o600); err != nil {
				return fmt.Errorf("keep the new share: %w", err)
			}
			k.pending = res.Share
			k.msgs[network.PhaseResult] = &network.DKGResult{Epoch: r.Epoch, Public: *res.Public}
			k.log.Info("computed a share of the network key's next epoch", "epoch", r.Epoch, "index", res.Share.Index)
		}
	}
	return nil
}

func (k *keyRounds) dropPending() error {
	k.pending = nil
	if err := os.Remove(pendingShareFile(k.shares.home)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete the pending network key share: %w", err)
	}
	return nil
}

// participant builds this node's generator from the round's enrolled parties; deals reports
// whether it deals (it holds a share of the current key, or the round is fresh).
func (k *keyRounds) participant(v *state.View, r *network.Round, dealer *network.RoundMember) (*netkey.Participant, bool, error) {
	members := func(ms []network.RoundMember) ([]netkey.DKGMember, error) {
		out := make([]netkey.DKGMember, len(ms))
		for i, m := range ms {
			raw, err := v.Get(network.EnrollmentKey(r.Epoch, m.Node))
			if err != nil || raw == nil {
				return nil, fmt.Errorf("enrollment of %s: %v", m.Node, err)
			}
			var e network.Enrollment
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, err
			}
			out[i] = netkey.DKGMember{Index: m.Index, Key: e.Key}
		}
		return out, nil
	}
	round := &netkey.DKGRound{Nonce: r.Nonce, Threshold: r.Threshold, OldThreshold: r.OldThreshold}
	var err error
	if round.Holders, err = members(r.Holders); err != nil {
		return nil, false, err
	}
	deals := dealer != nil
	var mine *netkey.Share
	if r.Reshare {
		if round.Dealers, err = members(r.Dealers); err != nil {
			return nil, false, err
		}
		key, err := network.GetKey(v)
		if err != nil {
			return nil, false, err
		}
		round.Current = &key.Public
		if cur := k.shares.get(); dealer != nil && cur != nil && cur.Share.Index == dealer.Index && key.Public.Check(cur.Share) == nil {
			mine = cur.Share
		} else if dealer != nil {
			k.log.Warn("this node deals in a re-sharing round but holds no share of the current key", "epoch", r.Epoch)
			deals = false
		}
	}
	part, err := netkey.NewParticipant(round, k.key, mine)
	return part, deals, err
}

// tidy follows the installed key (syncShare) on its own, for a node whose account can no longer
// send anything (a removed member must still delete its share).
func (k *keyRounds) tidy() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if h, _ := k.store.LastCommit(); h == 0 {
		return nil
	}
	v, err := k.store.At(0)
	if err != nil {
		return err
	}
	return k.syncShare(v)
}

// run tidies every interval until ctx ends.
func (k *keyRounds) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.tidy(); err != nil {
				k.log.Warn("following the network key", "err", err)
			}
		}
	}
}

// syncShare follows the installed key: a pending share of the installed epoch becomes the
// node's share, one whose round failed or was overtaken is deleted, and a share of an older
// epoch is deleted once a newer key is installed (the node is no longer a holder of that one).
func (k *keyRounds) syncShare(v *state.View) error {
	if p := k.pending; p != nil {
		if r, err := network.GetRound(v); err == nil && (r.Epoch > p.Epoch || (r.Epoch == p.Epoch && r.Status == network.RoundFailed)) {
			if key, err := network.GetKey(v); err == nil && key.Epoch < p.Epoch {
				if err := k.dropPending(); err != nil {
					return err
				}
				k.log.Info("deleted the share of a key round that did not complete", "epoch", p.Epoch)
			}
		}
	}
	key, err := network.GetKey(v)
	if codes.Of(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if p := k.pending; p != nil && key.Epoch >= p.Epoch {
		k.pending = nil
		if h := key.HolderOf(k.node); key.Epoch == p.Epoch && h != nil && h.Index == p.Index && key.Public.Check(p) == nil {
			if err := k.shares.install(p); err != nil {
				k.pending = p
				return err
			}
			k.log.Info("now holds a share of the network key", "epoch", p.Epoch, "index", p.Index)
		}
		if err := k.dropPending(); err != nil {
			return err
		}
	}
	if cur := k.shares.get(); cur != nil && cur.Share.Epoch < key.Epoch {
		if err := k.shares.drop(); err != nil {
			return err
		}
		k.log.Info("deleted its share of an earlier network key epoch", "epoch", cur.Share.Epoch)
	}
	return nil
}
