package consent

import (
	"bytes"
	"strings"
	"testing"
)

func TestTagsRoundTripAndSeparate(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	seen := map[string]bool{}
	for _, c := range Categories {
		tag := CategoryTag(k1, c)
		if !IsTag(tag) || CheckTag("category", tag) != nil || seen[tag] {
			t.Fatalf("%s: tag %q malformed or repeated", c, tag)
		}
		seen[tag] = true
		if got, ok := CategoryOf(k1, tag); !ok || got != c {
			t.Fatalf("%s: reversed to %q %t", c, got, ok)
		}
		if _, ok := CategoryOf(k2, tag); ok {
			t.Fatalf("%s: another patient's key reverses the tag", c)
		}
		if CategoryTag(k2, c) == tag || ResourceTypeTag(k1, c) == tag {
			t.Fatalf("%s: the tag does not depend on the key and domain", c)
		}
	}
	for _, s := range []string{"", "allergies", "ABCDEF0123456789abcdef0123456789", "0123456789abcdef0123456789abcde"} {
		if IsTag(s) || CheckTag("category", s) == nil {
			t.Fatalf("%q taken for a tag", s)
		}
	}
}

// BenchmarkCategoryTag is the cost of one tag (an agent tags each category it writes or asks
// for, and reverses a tag by trying the 17 categories).
func BenchmarkCategoryTag(b *testing.B) {
	key := bytes.Repeat([]byte{1}, 32)
	for b.Loop() {
		CategoryTag(key, "allergies")
	}
}

func BenchmarkCategoryOf(b *testing.B) {
	key := bytes.Repeat([]byte{1}, 32)
	tag := CategoryTag(key, Categories[len(Categories)-1])
	for b.Loop() {
		CategoryOf(key, tag)
	}
}

// A grant's condition is on the ledger: a category's name in it, in any quoting or case, is
// refused at compile time (CheckTx); the same condition over the patient's tag compiles.
func TestAttackConditionNamesNoCategory(t *testing.T) {
	for _, src := range []string{
		`category == "vital-signs"`, `category != 'laboratory'`, `category == r"allergies"`,
		`category == """Medications"""`, `category in ["x", " imaging "]`, `purpose == "TREAT" || category == "other"`,
	} {
		if _, err := CompileCondition(src); err == nil || !strings.Contains(err.Error(), "category in clear") {
			t.Errorf("%s: compiled (%v)", src, err)
		}
	}
	if _, err := CompileCondition(`category == "` + tag("laboratory") + `" && purpose == "TREAT"`); err != nil {
		t.Fatal(err)
	}
}
