package consent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Category tags (issue 10): on the ledger a category (and a record's resource type) is named only
// by a patient's opaque tag, never by its name. A tag is a keyed hash under the patient's tag key
// (records.TagKey), the same for everyone who holds the key, so grants, records and access
// requests still match by equality while an operator cannot tell one category from another.

// TagBytes is the size of a tag (hex-encoded on the ledger).
const TagBytes = 16

const (
	tagDomain  = "medchain/category-tag/v1\n"
	typeDomain = "medchain/resource-type-tag/v1\n"
)

// CategoryTag is the tag of category under a patient's tag key: 16 bytes of
// HMAC-SHA256(key, domain || category), in lowercase hex.
func CategoryTag(key []byte, category string) string { return keyedTag(key, tagDomain+category) }

// ResourceTypeTag is the tag of a FHIR resource type under a patient's tag key, as a record
// anchor carries it (in another domain than categories).
func ResourceTypeTag(key []byte, resourceType string) string {
	return keyedTag(key, typeDomain+resourceType)
}

func keyedTag(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil)[:TagBytes])
}

// CategoryOf returns the category whose tag under key is tag, if any (the categories are a
// fixed vocabulary, so a key holder reverses a tag by trying each).
func CategoryOf(key []byte, tag string) (string, bool) {
	for _, c := range Categories {
		if CategoryTag(key, c) == tag {
			return c, true
		}
	}
	return "", false
}

// IsTag reports whether s has a tag's form.
func IsTag(s string) bool {
	if len(s) != 2*TagBytes {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// TagKeyStateKey is the state key of patient's tag key (records.TagKey, anchored by the records
// contract).
func TagKeyStateKey(patient tx.Address) []byte { return []byte("rc/tk/" + string(patient)) }

// HasTagKey reports whether patient has anchored a tag key.
func HasTagKey(r state.Reader, patient tx.Address) (bool, error) {
	raw, err := r.Get(TagKeyStateKey(patient))
	if err != nil {
		return false, codes.Errorf(codes.Internal, "read the tag key of %s: %v", patient, err)
	}
	return raw != nil, nil
}

// CheckTag checks that field, a category or resource type in a transaction, is a tag: the ledger
// takes no category or resource type in clear.
func CheckTag(field, s string) error {
	if IsTag(s) {
		return nil
	}
	if slices.Contains(Categories, s) {
		return codes.Errorf(codes.Invalid, "%s: the ledger takes no category in clear; name it by the patient's tag (consent.CategoryTag under the patient's tag key)", field)
	}
	return codes.Errorf(codes.Invalid, "%s must be the patient's tag (%d lowercase hex digits)", field, 2*TagBytes)
}

// RequireTagKey refuses a transaction that names patient's tags while the patient has no tag key:
// nobody could read them, nor match them with anything.
func RequireTagKey(r state.Reader, patient tx.Address) error {
	ok, err := HasTagKey(r, patient)
	if err != nil {
		return err
	}
	if !ok {
		return codes.Errorf(codes.Invalid, "%s has no tag key yet: the patient's (or a guardian's) agent anchors one (records/set_tag_key) before the first record or grant by category", patient)
	}
	return nil
}
