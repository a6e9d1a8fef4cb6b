package agent

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/tx"
)

// Tag keys (issue 10): a patient's categories appear on the ledger as tags keyed by the
// patient's tag key (records.TagKey, consent.CategoryTag). The patient's (or a guardian's)
// agent draws the key once and anchors it wrapped for the network key; every agent in the
// patient's circle gets it from the network key's holders, which log each release to the
// patient's trail. An agent keeps the keys it got: they never change.

// tagKeys caches patients' tag keys, the resource types their tags stand for, and for a while
// that a patient has none.
type tagKeys struct {
	mu        sync.Mutex
	byPatient map[tx.Address][]byte
	types     map[tx.Address]map[string]string // tag -> FHIR resource type
	none      map[tx.Address]time.Time         // when the patient was last found without a key
}

// typeNames maps the tags of every FHIR R4 resource type under patient's key to the type.
func (k *tagKeys) typeNames(p tx.Address, key []byte) map[string]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if m, ok := k.types[p]; ok {
		return m
	}
	m := map[string]string{}
	for _, t := range fhir.ResourceTypes() {
		m[consent.ResourceTypeTag(key, t)] = t
	}
	if k.types == nil || len(k.types) > 1024 {
		k.types = map[tx.Address]map[string]string{}
	}
	k.types[p] = m
	return m
}

// noTagKeyTTL is how long an agent believes a patient has no tag key before it looks again.
const noTagKeyTTL = 10 * time.Second

func (k *tagKeys) knownNone(p tx.Address, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	at, ok := k.none[p]
	return ok && now.Sub(at) < noTagKeyTTL
}

func (k *tagKeys) noneFor(p tx.Address, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.none == nil || len(k.none) > 4096 {
		k.none = map[tx.Address]time.Time{}
	}
	k.none[p] = now
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
	delete(k.none, p)
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
	key, err := a.releaseWrapped(ctx, req, tk.Network, label, what, false, nil)
	var re *ReleaseError
	if errors.As(err, &re) && re.Unwrap() == nil { // not all refusals: the holders may have changed
		key, err = a.releaseWrapped(ctx, req, tk.Network, label, what, true, nil)
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
// none (this agent is the patient's or a guardian's). On a network that has no network key yet
// (its validators have not generated it) there can be no tag key: it returns nil.
func (a *Agent) EnsureTagKey(ctx context.Context, patient tx.Address) ([]byte, error) {
	k, err := a.TagKey(ctx, patient)
	if !errors.Is(err, ErrNoTagKey) {
		return k, err
	}
	key := make([]byte, records.TagKeyBytes)
	rand.Read(key)
	netKey, err := a.networkKey(ctx, false)
	if errors.Is(err, errNoNetworkKey) {
		return nil, nil
	}
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

// CategoryTag is what this agent writes on the ledger for patient's category: the patient's tag
// of it (the ledger takes no category in clear). Tags, AllCategories and "" pass as they are. For
// a patient without a tag key (the patient's agent draws it with its first grant or record, or
// EnsureTagKey) it is ErrNoTagKey, as for an account outside the patient's circle.
func (a *Agent) CategoryTag(ctx context.Context, patient tx.Address, category string) (string, error) {
	if category == "" || category == consent.AllCategories || consent.IsTag(category) {
		return category, nil
	}
	return a.tagged(ctx, patient, category, consent.CategoryTag)
}

// ResourceTypeTag is what this agent writes on the ledger for a record's FHIR resource type: the
// patient's tag of it (ErrNoTagKey as CategoryTag).
func (a *Agent) ResourceTypeTag(ctx context.Context, patient tx.Address, resourceType string) (string, error) {
	if resourceType == "" || consent.IsTag(resourceType) {
		return resourceType, nil
	}
	return a.tagged(ctx, patient, resourceType, consent.ResourceTypeTag)
}

// tagged is tag(patient's tag key, name), or ErrNoTagKey.
func (a *Agent) tagged(ctx context.Context, patient tx.Address, name string, tag func([]byte, string) string) (string, error) {
	key, err := a.tagKeyFor(ctx, patient)
	if err != nil {
		return "", err
	}
	if key == nil {
		return "", ErrNoTagKey
	}
	return tag(key, name), nil
}

// writerTagKey makes sure patient has a tag key before this agent writes a record for the
// patient: the patient's own agent draws one if there is none; for any other writer no key
// means no write grant (a grant by category is made after the key), ErrNoWriteGrant.
//
// A write looks the key up again even when this agent recently found none: the patient may
// have drawn it with the grant that now lets this agent write.
func (a *Agent) writerTagKey(ctx context.Context, patient tx.Address) error {
	key, err := a.TagKey(ctx, patient)
	if errors.Is(err, ErrNoTagKey) {
		a.tags.noneFor(patient, time.Now())
		key, err = nil, nil
	}
	if err != nil || key != nil {
		return err
	}
	if patient != a.Address() {
		return fmt.Errorf("%w: the patient has no tag key yet (%w)", ErrNoWriteGrant, ErrNoTagKey)
	}
	if key, err = a.EnsureTagKey(ctx, patient); err == nil && key == nil {
		err = fmt.Errorf("%w: the network has no network key yet", ErrNoTagKey)
	}
	return err
}

// ResourceTypeName returns a record's resource type as the ledger shows it (the patient's tag, or
// a name) as a name, where this account may read the patient's tags.
func (a *Agent) ResourceTypeName(ctx context.Context, patient tx.Address, resourceType string) string {
	if !consent.IsTag(resourceType) {
		return resourceType
	}
	key, _ := a.tagKeyFor(ctx, patient)
	if key == nil {
		return resourceType
	}
	if name, ok := a.tags.typeNames(patient, key)[resourceType]; ok {
		return name
	}
	return resourceType
}

// tagKeyFor returns patient's tag key, or nil when the patient has none.
func (a *Agent) tagKeyFor(ctx context.Context, patient tx.Address) ([]byte, error) {
	now := time.Now()
	if a.tags.knownNone(patient, now) {
		return nil, nil
	}
	key, err := a.TagKey(ctx, patient)
	if errors.Is(err, ErrNoTagKey) {
		a.tags.noneFor(patient, now)
		return nil, nil
	}
	return key, err
}

// CategoryNames returns categories as the ledger shows them (the patient's tags, or names) as
// names, where this account may hold the patient's tag key; a tag it cannot read stays a tag.
func (a *Agent) CategoryNames(ctx context.Context, patient tx.Address, categories []string) []string {
	if !slices.ContainsFunc(categories, consent.IsTag) {
		return categories
	}
	key, _ := a.tagKeyFor(ctx, patient)
	if key == nil {
		return categories
	}
	out := slices.Clone(categories)
	for i, c := range out {
		if name, ok := consent.CategoryOf(key, c); ok {
			out[i] = name
		}
	}
	return out
}

// conditionTags rewrites the category names quoted in a grant's CEL condition (category ==
// "laboratory") into patient's tags, which is what the condition's category variable holds.
func conditionTags(cond string, key []byte) string {
	for _, c := range consent.Categories {
		for _, q := range []string{`"`, "'"} {
			cond = strings.ReplaceAll(cond, q+c+q, q+consent.CategoryTag(key, c)+q)
		}
	}
	return cond
}
