package fhir

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestCoverageCard: the official R4 Coverage examples read as cards (subscriberId before
// identifier; the class of type plan); a Coverage without a plan or an end, or another
// resource, is refused with what is missing.
func TestCoverageCard(t *testing.T) {
	read := func(name string) []byte {
		raw, err := os.ReadFile("../testdata/fhir-examples/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	day := func(s string) time.Time { d, _ := time.Parse("2006-01-02", s); return d }
	for _, tc := range []struct {
		file, member, plan, start, end string
	}{
		{"Coverage-9876B1.json", "12345", "B37FC", "2011-05-23", "2012-05-23"},
		{"Coverage-7546D.json", "AB9876", "BG4352", "2011-03-17", "2012-03-17"},
	} {
		c, err := ParseCoverageCard(read(tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if c.MemberID != tc.member || c.Plan != tc.plan || !c.Start.Equal(day(tc.start)) || !c.End.Equal(day(tc.end)) {
			t.Fatalf("%s: %+v", tc.file, c)
		}
	}
	noEnd := strings.Replace(string(read("Coverage-9876B1.json")), `"end": "2012-05-23"`, `"end": "2012"`, 1)
	if _, err := ParseCoverageCard([]byte(noEnd)); err == nil || !strings.Contains(err.Error(), "period.end") {
		t.Fatalf("a year as the end: %v", err)
	}
	noPlan := strings.Replace(string(read("Coverage-9876B1.json")), `"code": "plan"`, `"code": "group"`, 1)
	if _, err := ParseCoverageCard([]byte(noPlan)); err == nil || !strings.Contains(err.Error(), "plan") {
		t.Fatalf("no plan: %v", err)
	}
	if _, err := ParseCoverageCard(read("Claim-100150.json")); err == nil || !IsInvalid(err) {
		t.Fatalf("a Claim read as a card: %v", err)
	}
}
