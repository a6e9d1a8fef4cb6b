package consent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"
)

// Category tags (issue 10): on the ledger a category (and a record's resource type) may be named
// by a patient's opaque tag instead of its name. A tag is a keyed hash under the patient's tag key (records.TagKey), the
// same for everyone who holds the key, so grants, records and access requests still match by
// equality while an operator cannot tell one category from another.

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

// ValidCategory reports whether c may name a category in a grant, a record or an access
// request: a category name, or a tag.
func ValidCategory(c string) bool { return IsTag(c) || slices.Contains(Categories, c) }
