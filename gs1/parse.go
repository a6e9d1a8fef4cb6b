package gs1

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// MaxCodeBytes bounds the input of Parse.
const MaxCodeBytes = 512

// GS is the ASCII group separator that stands for FNC1 in scanner output.
const GS = '\x1d'

// Element is one application identifier and its value.
type Element struct {
	AI    string `json:"ai"`
	Title string `json:"title"`
	Value string `json:"value"`
}

// Code is a parsed GS1 code: its elements in order of appearance.
type Code struct {
	Elements []Element `json:"elements"`
}

// Error explains why a code was refused; its message is safe to show to the user.
type Error struct{ Msg string }

func (e *Error) Error() string { return "invalid GS1 code: " + e.Msg }

func errorf(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// Get returns the value of ai, or "".
func (c *Code) Get(ai string) string {
	for _, e := range c.Elements {
		if e.AI == ai {
			return e.Value
		}
	}
	return ""
}

// GTIN, Serial, Lot and SSCC return their elements' values ("" if absent).
func (c *Code) GTIN() string   { return c.Get("01") }
func (c *Code) Serial() string { return c.Get("21") }
func (c *Code) Lot() string    { return c.Get("10") }
func (c *Code) SSCC() string   { return c.Get("00") }

// Expiry returns the expiry date (AI 17) if present.
func (c *Code) Expiry() (time.Time, bool) {
	v := c.Get("17")
	if v == "" {
		return time.Time{}, false
	}
	t, err := ParseDate(v)
	return t, err == nil
}

// Parse recognizes the form of s (Digital Link URI, bracketed element string, or raw scanner
// data with FNC1 separators) and parses it.
func Parse(s string) (*Code, error) {
	if len(s) > MaxCodeBytes {
		return nil, errorf("longer than %d bytes", MaxCodeBytes)
	}
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return nil, errorf("empty")
	case strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"):
		return ParseDigitalLink(s)
	case strings.HasPrefix(s, "("):
		return ParseBracketed(s)
	default:
		return ParseRaw(s)
	}
}

// ParseBracketed parses a human-readable element string such as
// "(01)09506000134352(17)291231(10)LOT42(21)SERIAL0001".
func ParseBracketed(s string) (*Code, error) {
	var elems []Element
	for len(s) > 0 {
		if s[0] != '(' {
			return nil, errorf("expected '(' before an application identifier at %q", clip(s))
		}
		end := strings.IndexByte(s, ')')
		if end < 0 {
			return nil, errorf("missing ')' after application identifier")
		}
		ai := s[1:end]
		s = s[end+1:]
		// The value runs to the next "(NN)" that names a known AI, or to the end.
		next := len(s)
		for i := 0; i < len(s); i++ {
			if s[i] == '(' {
				if j := strings.IndexByte(s[i:], ')'); j > 0 {
					if _, ok := ais[s[i+1:i+j]]; ok {
						next = i
						break
					}
				}
			}
		}
		elems = append(elems, Element{AI: ai, Value: s[:next]})
		s = s[next:]
	}
	return build(elems)
}

// ParseRaw parses scanner output: an optional symbology identifier ("]d2", "]Q3", "]C1", "]e0"),
// then element strings concatenated, variable-length ones ended by GS (FNC1).
func ParseRaw(s string) (*Code, error) {
	if len(s) >= 3 && s[0] == ']' {
		s = s[3:]
	}
	s = strings.TrimPrefix(s, string(GS))
	var elems []Element
	for len(s) > 0 {
		ai, spec, ok := lookupAI(s)
		if !ok {
			return nil, errorf("unknown application identifier at %q", clip(s))
		}
		s = s[len(ai):]
		var v string
		if spec.fixed > 0 && predefinedLength[ai] {
			if len(s) < spec.fixed {
				return nil, errorf("AI (%s) %s needs %d characters, got %d", ai, spec.title, spec.fixed, len(s))
			}
			v, s = s[:spec.fixed], s[spec.fixed:]
		} else {
			end := strings.IndexByte(s, GS)
			if end < 0 {
				end = len(s)
			}
			v, s = s[:end], s[end:]
		}
		s = strings.TrimPrefix(s, string(GS))
		elems = append(elems, Element{AI: ai, Value: v})
	}
	return build(elems)
}

// ParseDigitalLink parses a GS1 Digital Link URI: a primary key (01 GTIN or 00 SSCC) in the
// path, optionally followed by qualifiers (22, 10, 21 after a GTIN), and data attributes such as
// 17 in the query string. Other query parameters are ignored.
func ParseDigitalLink(s string) (*Code, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errorf("not a URI: %v", err)
	}
	segs := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	start := -1
	for i := 0; i+1 < len(segs); i++ {
		if segs[i] == "01" || segs[i] == "00" {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, errorf("Digital Link path has no /01/{gtin} or /00/{sscc}")
	}
	var elems []Element
	order := map[string]int{"01": 0, "00": 0, "22": 1, "10": 2, "21": 3}
	last := -1
	for i := start; i < len(segs); i += 2 {
		if i+1 >= len(segs) {
			return nil, errorf("Digital Link path ends with an identifier and no value")
		}
		ai := segs[i]
		rank, ok := order[ai]
		if !ok || rank <= last || (segs[start] == "00" && i > start) {
			return nil, errorf("Digital Link path element (%s) is not a key qualifier in order", ai)
		}
		last = rank
		v, err := url.PathUnescape(segs[i+1])
		if err != nil {
			return nil, errorf("bad escape in (%s)", ai)
		}
		elems = append(elems, Element{AI: ai, Value: v})
	}
	q := u.Query()
	for _, ai := range slices.Sorted(maps.Keys(q)) {
		if _, known := ais[ai]; !known || !isDigits(ai) {
			continue
		}
		elems = append(elems, Element{AI: ai, Value: q.Get(ai)})
	}
	return build(elems)
}

// build validates the elements and fills in titles.
func build(elems []Element) (*Code, error) {
	if len(elems) == 0 {
		return nil, errorf("no elements")
	}
	seen := map[string]bool{}
	for i := range elems {
		e := &elems[i]
		spec, ok := ais[e.AI]
		if !ok {
			return nil, errorf("unknown application identifier (%s)", clip(e.AI))
		}
		if seen[e.AI] {
			return nil, errorf("application identifier (%s) appears twice", e.AI)
		}
		seen[e.AI] = true
		e.Title = spec.title
		if err := checkValue(e.AI, spec, e.Value); err != nil {
			return nil, err
		}
	}
	c := &Code{Elements: elems}
	if c.Serial() != "" && c.GTIN() == "" {
		return nil, errorf("serial (21) without a GTIN (01)")
	}
	return c, nil
}

func checkValue(ai string, spec aiSpec, v string) error {
	switch {
	case v == "":
		return errorf("(%s) %s is empty", ai, spec.title)
	case spec.fixed > 0 && len(v) != spec.fixed:
		return errorf("(%s) %s must be %d characters, got %d", ai, spec.title, spec.fixed, len(v))
	case spec.fixed == 0 && len(v) > spec.max:
		return errorf("(%s) %s is at most %d characters, got %d", ai, spec.title, spec.max, len(v))
	}
	for i := 0; i < len(v); i++ {
		if spec.numeric && (v[i] < '0' || v[i] > '9') {
			return errorf("(%s) %s must be digits", ai, spec.title)
		}
		if !cset82(v[i]) {
			return errorf("(%s) %s has a character outside the GS1 set: %q", ai, spec.title, v[i])
		}
	}
	if spec.check && CheckDigit(v[:len(v)-1]) != v[len(v)-1] {
		return errorf("(%s) %s check digit is wrong: expected %c", ai, spec.title, CheckDigit(v[:len(v)-1]))
	}
	if spec.date {
		if _, err := ParseDate(v); err != nil {
			return errorf("(%s) %s: %v", ai, spec.title, err)
		}
	}
	return nil
}

// ParseDate reads a GS1 YYMMDD date. Day 00 means the last day of the month. Years are taken as
// 2000-2099: the GS1 sliding century window needs today's date, which a deterministic parser
// does not have.
func ParseDate(v string) (time.Time, error) {
	if len(v) != 6 || !isDigits(v) {
		return time.Time{}, fmt.Errorf("date must be YYMMDD")
	}
	y, m, d := 2000+atoi(v[0:2]), atoi(v[2:4]), atoi(v[4:6])
	if m < 1 || m > 12 {
		return time.Time{}, fmt.Errorf("month %02d out of range", m)
	}
	last := time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if d == 0 {
		d = last
	}
	if d > last {
		return time.Time{}, fmt.Errorf("day %02d out of range", d)
	}
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC), nil
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func clip(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}

// DigitalLink renders a pack identity as a GS1 Digital Link URI on id.gs1.org (the canonical EPC
// form in EPCIS 2.0).
func DigitalLink(gtin, serial string) string {
	return "https://id.gs1.org/01/" + gtin + "/21/" + url.PathEscape(serial)
}

// SSCCLink renders an SSCC as a Digital Link URI.
func SSCCLink(sscc string) string { return "https://id.gs1.org/00/" + sscc }
