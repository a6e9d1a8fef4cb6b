package records

import (
	"slices"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// A patient's tag key (issue 10) is a 32-byte secret from which the patient's parties compute
// opaque category tags: consent.CategoryTag(key, "allergies") is a keyed hash that tells an operator
// nothing, yet is the same for everyone who holds the key, so the ledger can still match grants,
// records and access requests by tag. The patient's agent draws the key once and anchors it
// wrapped for the network key (netkey.Wrap under TagKeyContext); the network key's holders
// release it (api.ReleaseRequest with Kind ReleaseTagKey) to the patient, a guardian, an
// auditor, and anyone an active grant or break-glass session of the patient names, each release
// logged to the patient's trail. The key never changes: a new one would orphan every tag.

// TypeSetTagKey anchors a patient's tag key (once).
const TypeSetTagKey = "records/set_tag_key"

// TagKeyBytes is the size of a tag key.
const (
	TagKeyBytes    = 32
	MaxTagKeyWrap  = 1 << 10 // bytes of the network-wrapped key
	tagKeyContextV = "medchain/tag-key/v1\n"
)

// SetTagKey anchors patient's tag key, wrapped for the network key, with the tags of the
// emergency categories (consent.EmergencyCategories, in any order): break-glass access opens
// records whose tag is one of them. Signed by the patient or a guardian.
type SetTagKey struct {
	Patient   tx.Address `json:"patient,omitempty"` // default: the signer
	Network   []byte     `json:"network"`
	Emergency []string   `json:"emergency"`
}

// TagKey is a patient's anchored tag key.
type TagKey struct {
	Patient   tx.Address `json:"patient"`
	Network   []byte     `json:"network"`
	Emergency []string   `json:"emergency"`
	By        tx.Address `json:"by"`
	Height    int64      `json:"height"`
}

// TagKeyContext is what a patient's network-wrapped tag key is bound to.
func TagKeyContext(chainID string, patient tx.Address) []byte {
	return []byte(tagKeyContextV + chainID + "\n" + string(patient))
}

// IsEmergencyCategory reports whether break-glass access opens category of patient: one of the
// emergency tags the patient's tag key names.
func IsEmergencyCategory(r state.Reader, patient tx.Address, category string) (bool, error) {
	if !consent.IsTag(category) {
		return false, nil
	}
	k, err := GetTagKey(r, patient)
	if codes.Of(err) == codes.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return slices.Contains(k.Emergency, category), nil
}

func tagKeyKey(p tx.Address) []byte { return consent.TagKeyStateKey(p) }

// TagKeyStateKey is the state key of patient's tag key.
func TagKeyStateKey(p tx.Address) []byte { return tagKeyKey(p) }

// GetTagKey returns patient's tag key, or NotFound.
func GetTagKey(r state.Reader, patient tx.Address) (*TagKey, error) {
	return contracts.Load[TagKey](r, tagKeyKey(patient), "no tag key for %s", patient)
}

func setTagKey(kv state.KV, ctx contracts.Context, m *SetTagKey) ([]contracts.Event, error) {
	patient, err := consent.ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	if len(m.Network) == 0 || len(m.Network) > MaxTagKeyWrap {
		return nil, codes.Errorf(codes.Invalid, "network: the tag key wrapped for the network key, 1..%d bytes", MaxTagKeyWrap)
	}
	tags := slices.Clone(m.Emergency)
	slices.Sort(tags)
	if len(tags) != len(consent.EmergencyCategories) || len(slices.Compact(tags)) != len(m.Emergency) {
		return nil, codes.Errorf(codes.Invalid, "emergency: the %d distinct tags of the emergency categories", len(consent.EmergencyCategories))
	}
	for _, t := range tags {
		if !consent.IsTag(t) {
			return nil, codes.Errorf(codes.Invalid, "emergency: %q is not a tag (%d lowercase hex digits)", t, 2*consent.TagBytes)
		}
	}
	if _, err := GetTagKey(kv, patient); err == nil {
		return nil, codes.Errorf(codes.AlreadyExists, "%s already has a tag key (it never changes: its tags would be orphaned)", patient)
	} else if codes.Of(err) != codes.NotFound {
		return nil, err
	}
	k := TagKey{Patient: patient, Network: m.Network, Emergency: tags, By: ctx.Signer, Height: ctx.Height}
	return []contracts.Event{contracts.NewEvent("records.tag_key", "patient", string(patient))}, contracts.PutJSON(kv, tagKeyKey(patient), &k)
}
