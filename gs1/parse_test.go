package gs1_test

import (
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/gs1"
)

func TestCheckDigits(t *testing.T) {
	// Examples from the GS1 General Specifications and GS1 sample data.
	for _, gtin := range []string{"09506000134352", "00614141123452", "09501101020917", "04012345000009"} {
		if !gs1.ValidGTIN(gtin) {
			t.Errorf("GTIN %s rejected", gtin)
		}
	}
	for _, bad := range []string{"09506000134353", "9506000134352", "0950600013435X", ""} {
		if gs1.ValidGTIN(bad) {
			t.Errorf("GTIN %q accepted", bad)
		}
	}
	if !gs1.ValidSSCC("106141411234567897") || gs1.ValidSSCC("106141411234567890") {
		t.Error("SSCC check digit")
	}
}

func TestParseForms(t *testing.T) {
	want := map[string]string{"01": "09506000134352", "17": "291231", "10": "LOT42", "21": "SERIAL0001"}
	forms := map[string]string{
		"bracketed":              "(01)09506000134352(17)291231(10)LOT42(21)SERIAL0001",
		"raw, GS separators":     "010950600013435217291231" + "10LOT42\x1d21SERIAL0001",
		"raw, symbology id":      "]d2010950600013435217291231" + "10LOT42\x1d21SERIAL0001",
		"raw, leading FNC1":      "\x1d0109506000134352" + "21SERIAL0001\x1d17291231" + "10LOT42",
		"digital link":           "https://id.gs1.org/01/09506000134352/10/LOT42/21/SERIAL0001?17=291231",
		"digital link, own host": "https://example.com/pack/01/09506000134352/10/LOT42/21/SERIAL0001?17=291231&linkType=all",
	}
	for name, in := range forms {
		t.Run(name, func(t *testing.T) {
			c, err := gs1.Parse(in)
			if err != nil {
				t.Fatal(err)
			}
			for ai, v := range want {
				if got := c.Get(ai); got != v {
					t.Errorf("(%s) = %q, want %q", ai, got, v)
				}
			}
			if exp, ok := c.Expiry(); !ok || !exp.Equal(time.Date(2029, 12, 31, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("expiry = %v", exp)
			}
		})
	}
}

func TestSpecExamples(t *testing.T) {
	// GS1 General Specifications: SSCC of a logistic unit; day 00 = end of month; a
	// percent-encoded serial in a Digital Link.
	c, err := gs1.Parse("(00)106141411234567897")
	if err != nil || c.SSCC() != "106141411234567897" {
		t.Fatalf("SSCC: %v %v", c, err)
	}
	c, err = gs1.Parse("(01)09506000134352(17)280200(10)A1")
	if err != nil {
		t.Fatal(err)
	}
	if exp, _ := c.Expiry(); exp.Day() != 29 || exp.Month() != 2 {
		t.Fatalf("(17)280200 = %v, want 2028-02-29", exp)
	}
	c, err = gs1.Parse("https://id.gs1.org/01/09506000134352/21/AB%2F12")
	if err != nil || c.Serial() != "AB/12" {
		t.Fatalf("escaped serial: %v %v", c, err)
	}
	if got := gs1.DigitalLink("09506000134352", "AB/12"); got != "https://id.gs1.org/01/09506000134352/21/AB%2F12" {
		t.Fatalf("DigitalLink = %s", got)
	}
}

func TestParseRejects(t *testing.T) {
	cases := map[string]string{
		"bad check digit":      "(01)09506000134353(21)X",
		"unknown AI":           "(01)09506000134352(99)X",
		"unknown AI raw":       "9912345",
		"short GTIN":           "(01)0950600013435(21)X",
		"bad month":            "(01)09506000134352(17)291331",
		"bad day":              "(01)09506000134352(17)290231",
		"serial too long":      "(01)09506000134352(21)" + strings.Repeat("A", 21),
		"bad character":        "(01)09506000134352(21)AB CD",
		"control character":    "(01)09506000134352(21)AB\x00",
		"serial without gtin":  "(21)SERIAL",
		"duplicate AI":         "(01)09506000134352(01)09506000134352",
		"empty":                "   ",
		"huge":                 strings.Repeat("(", 600),
		"no closing bracket":   "(01",
		"DL no key":            "https://id.gs1.org/10/LOT",
		"DL qualifier order":   "https://id.gs1.org/01/09506000134352/21/S/10/L",
		"DL dangling":          "https://id.gs1.org/01/09506000134352/21",
		"DL bad gtin":          "https://id.gs1.org/01/0950600013435X",
		"truncated fixed":      "0109506",
		"letters in numeric":   "(01)0950600013435A",
		"bracket garbage":      "(01)09506000134352junk(",
		"non numeric expiry":   "(01)09506000134352(17)2912AB",
		"not a code":           "hello world",
		"script":               "<script>alert(1)</script>",
		"sql":                  "'; DROP TABLE packs; --",
		"DL query unknown AI":  "https://id.gs1.org/01/09506000134352?17=2913",
		"empty serial":         "(01)09506000134352(21)",
		"AI only":              "(01)",
		"raw GS only":          "\x1d",
		"raw symbology only":   "]d2",
		"bracket no AI digits": "()09506000134352",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if c, err := gs1.Parse(in); err == nil {
				t.Fatalf("accepted: %+v", c)
			} else if !strings.HasPrefix(err.Error(), "invalid GS1 code: ") {
				t.Fatalf("error without a clear prefix: %v", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("(01)09506000134352(17)291231(10)LOT42(21)SERIAL0001")
	f.Add("]d2010950600013435217291231" + "10LOT42\x1d21S")
	f.Add("https://id.gs1.org/01/09506000134352/21/S?17=291231")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := gs1.Parse(s)
		if err == nil && c.GTIN() != "" && !gs1.ValidGTIN(c.GTIN()) {
			t.Fatalf("accepted an invalid GTIN from %q", s)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := gs1.Parse("(01)09506000134352(17)291231(10)LOT42(21)SERIAL0001"); err != nil {
			b.Fatal(err)
		}
	}
}
