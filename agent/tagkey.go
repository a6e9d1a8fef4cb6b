package agent

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/tx"
)

// Tag keys (issue 10): a patient's categories appear on the ledger as tags keyed by the
// patient's tag key (records.TagKey, consent.CategoryTag). The patient's (or a guardian's)
// agent draws the key once and anchors it wrapped for the network key; every agent in the
// patient's circle gets it from the network key's holders, which log each release to the
// patient's trail. An agent keeps the keys it got: they never change.

// tagKeys caches patients' tag keys.
type tagKeys struct {
	mu        sync.Mutex
	byPatient map[tx.Address][]byte
}

func (k *tagKeys) get(p tx.Address) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.byPatient[p]
}

func (k *tagKeys) put(p tx.Address, key []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.byPatient == nil {
		k.byPatient = map[tx.Address][]byte{}
	}
	k.byPatient[p] = key
}

// ErrNoTagKey is TagKey's error for a patient who has no tag key yet.
var ErrNoTagKey = errors.New("the patient has no tag key yet")

// TagKey returns patient's tag key, released by the network key's holders to this account if it
// stands in the patient's circle (ErrNotFound if it does not, ErrNoTagKey if the patient has
// none yet).
func (a *Agent) TagKey(ctx context.Context, patient tx.Address) ([]byte, error) {
	return a.tagKeyAt(ctx, patient, 0)
}

// tagKeyAt is TagKey reading state at least as new as block minHeight.
func (a *Agent) tagKeyAt(ctx context.Context, patient tx.Address, minHeight int64) ([]byte, error) {
	if k := a.tags.get(patient); k != nil {
		return k, nil
	}
	tk, err := a.readTagKey(ctx, patient, minHeight)
	if err != nil {
		return nil, err
	}
	req := api.ReleaseRequest{Kind: api.ReleaseTagKey, Patient: patient}
	label := records.TagKeyContext(a.signer.ChainID, patient)
	what := "the tag key of " + string(patient)
	key, err := a.releaseWrapped(ctx, req, tk.Network, label, what, false)
	var re *ReleaseError
	if errors.As(err, &re) && re.Unwrap() == nil { // not all refusals: the holders may have changed
		key, err = a.releaseWrapped(ctx, req, tk.Network, label, what, true)
	}
	if err != nil {
		return nil, err
	}
	if len(key) != records.TagKeyBytes {
		return nil, fmt.Errorf("%s is %d bytes, not %d", what, len(key), records.TagKeyBytes)
	}
	a.tags.put(patient, key)
	return key, nil
}

// readTagKey reads patient's anchored tag key (verified against a signed header with a Trust)
// in state at least as new as block minHeight.
func (a *Agent) readTagKey(ctx context.Context, patient tx.Address, minHeight int64) (*records.TagKey, error) {
	var raw []byte
	var err error
	if a.cfg.Trust != nil {
		raw, err = a.cfg.Trust.Get(ctx, a.node, records.TagKeyStateKey(patient), minHeight)
		if client.IsNotFound(err) && minHeight == 0 {
			// The verified header may be a moment old (client.TrustFreshness): a key or a grant
			// that just committed is not in its state. Ask once more at the node's latest height.
			if st, serr := a.node.Status(ctx); serr == nil && st.AppHeight > 0 {
				raw, err = a.cfg.Trust.Get(ctx, a.node, records.TagKeyStateKey(patient), st.AppHeight)
			}
		}
	} else {
		var p *api.Proven
		if p, err = a.node.State(ctx, records.TagKeyStateKey(patient), false); err == nil {
			raw = p.Value
		}
	}
	if client.IsNotFound(err) {
		return nil, ErrNoTagKey // or not in the patient's circle: the node answers alike
	}
	if err != nil {
		return nil, fmt.Errorf("read the tag key of %s: %w", patient, err)
	}
	var tk records.TagKey
	if err := json.Unmarshal(raw, &tk); err != nil || tk.Patient != patient {
		return nil, fmt.Errorf("the tag key of %s does not decode", patient)
	}
	return &tk, nil
}

// EnsureTagKey returns patient's tag key, first drawing and anchoring one if the patient has
// none (this agent is the patient's or a guardian's).
func (a *Agent) EnsureTagKey(ctx context.Context, patient tx.Address) ([]byte, error) {
	k, err := a.TagKey(ctx, patient)
	if !errors.Is(err, ErrNoTagKey) {
		return k, err
	}
	key := make([]byte, records.TagKeyBytes)
	rand.Read(key)
	netKey, err := a.networkKey(ctx, false)
	if err != nil {
		return nil, err
	}
	wrapped, err := netkey.Wrap(&netKey.Public, key, records.TagKeyContext(a.signer.ChainID, patient))
	if err != nil {
		return nil, err
	}
	m := records.SetTagKey{Patient: patient, Network: wrapped}
	for _, c := range consent.EmergencyCategories {
		m.Emergency = append(m.Emergency, consent.CategoryTag(key, c))
	}
	_, err = a.signer.Send(ctx, records.TypeSetTagKey, m)
	var te *client.TxError
	if errors.As(err, &te) && te.Code() == codes.AlreadyExists { // another agent of the circle was first
		return a.tagKeyAt(ctx, patient, te.Result.Height)
	}
	if err != nil {
		return nil, fmt.Errorf("anchor the tag key of %s: %w", patient, err)
	}
	a.tags.put(patient, key)
	return key, nil
}
