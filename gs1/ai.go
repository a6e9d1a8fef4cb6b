// Package gs1 parses the codes printed on medicine packs and logistic units: GS1 element strings
// as printed under a barcode ("(01)09506000134352(17)291231(10)LOT42(21)S1"), raw scanner output
// with FNC1 group separators and an optional symbology identifier ("]d2010950..."), and GS1
// Digital Link URIs ("https://id.gs1.org/01/09506000134352/10/LOT42/21/S1?17=291231"). It checks
// application identifiers, lengths, character sets, check digits and dates. It is pure: no I/O.
package gs1

// aiSpec describes one application identifier: fixed length (0 = variable up to max), numeric
// or GS1 character set 82, and an optional check digit.
type aiSpec struct {
	title   string
	fixed   int
	max     int
	numeric bool
	check   bool
	date    bool // YYMMDD
}

// ais are the application identifiers medchain accepts (those used on pharmaceutical packs and
// logistic units, GS1 General Specifications section 3). Any other AI is refused as unknown.
var ais = map[string]aiSpec{
	"00":   {title: "SSCC", fixed: 18, numeric: true, check: true},
	"01":   {title: "GTIN", fixed: 14, numeric: true, check: true},
	"02":   {title: "CONTENT", fixed: 14, numeric: true, check: true},
	"10":   {title: "BATCH/LOT", max: 20},
	"11":   {title: "PROD DATE", fixed: 6, numeric: true, date: true},
	"13":   {title: "PACK DATE", fixed: 6, numeric: true, date: true},
	"15":   {title: "BEST BEFORE", fixed: 6, numeric: true, date: true},
	"16":   {title: "SELL BY", fixed: 6, numeric: true, date: true},
	"17":   {title: "USE BY OR EXPIRY", fixed: 6, numeric: true, date: true},
	"21":   {title: "SERIAL", max: 20},
	"22":   {title: "CPV", max: 20},
	"30":   {title: "VAR. COUNT", max: 8, numeric: true},
	"37":   {title: "COUNT", max: 8, numeric: true},
	"240":  {title: "ADDITIONAL ID", max: 30},
	"241":  {title: "CUST. PART No.", max: 30},
	"250":  {title: "SECONDARY SERIAL", max: 30},
	"400":  {title: "ORDER NUMBER", max: 30},
	"7003": {title: "EXPIRY TIME", fixed: 10, numeric: true},
	"710":  {title: "NHRN PZN", max: 20},
	"711":  {title: "NHRN CIP", max: 20},
	"712":  {title: "NHRN CN", max: 20},
	"713":  {title: "NHRN DRN", max: 20},
	"714":  {title: "NHRN AIM", max: 20},
}

// predefinedLength lists the AI prefixes whose element strings have a predefined length and so
// need no FNC1 after them (GS1 General Specifications figure 7.8.5-2). Their lengths exclude the
// AI itself.
var predefinedLength = map[string]bool{"00": true, "01": true, "02": true, "11": true, "13": true, "15": true, "16": true, "17": true}

// lookupAI finds the AI at the start of s: two, three or four digits.
func lookupAI(s string) (string, aiSpec, bool) {
	for n := 2; n <= 4 && n <= len(s); n++ {
		if spec, ok := ais[s[:n]]; ok {
			return s[:n], spec, true
		}
	}
	return "", aiSpec{}, false
}

// cset82 reports whether c is in the GS1 AI encodable character set 82.
func cset82(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '"', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', ':', ';', '<', '=', '>', '?', '_':
		return true
	}
	return false
}

// CheckDigit computes the GS1 mod-10 check digit of the digits in s (without the check digit).
func CheckDigit(s string) byte {
	sum := 0
	for i := 0; i < len(s); i++ {
		d := int(s[len(s)-1-i] - '0')
		if i%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

// ValidGTIN reports whether s is a 14-digit GTIN with a correct check digit.
func ValidGTIN(s string) bool { return validNumber(s, 14) }

// ValidSSCC reports whether s is an 18-digit SSCC with a correct check digit.
func ValidSSCC(s string) bool { return validNumber(s, 18) }

func validNumber(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < n; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return CheckDigit(s[:n-1]) == s[n-1]
}

// ValidText reports whether v is 1..max characters of the GS1 character set 82 (lots, serials).
func ValidText(v string, max int) bool {
	if v == "" || len(v) > max {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !cset82(v[i]) {
			return false
		}
	}
	return true
}
