package consent

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/tx"
)

// Conditions with a time-zone argument: each must be refused at compile time.
var zonedConditions = []string{
	`time.getHours("Europe/Amsterdam") < 18`,
	`time.getDayOfWeek("America/New_York") == 1`,
	`time.getFullYear("Asia/Tokyo") == 2026`,
	`time.getMonth("Europe/Amsterdam") == 0`,
	`time.getDate("Europe/Amsterdam") == 5`,
	`time.getDayOfMonth("Europe/Amsterdam") == 4`,
	`time.getDayOfYear("Europe/Amsterdam") == 4`,
	`time.getMinutes("Asia/Kolkata") == 30`,
	`time.getSeconds("Europe/Amsterdam") == 0`,
	`time.getMilliseconds("Europe/Amsterdam") == 0`,
	`time.getHours("+01:00") < 18`,
	`time.getHours("UTC") < 18`,
	`dyn(time).getHours("Europe/Amsterdam") < 18`,
	`[time].exists(t, t.getHours(purpose) == 1)`,
}

// UTC-only conditions, and instants around a daylight-saving change and a year end.
var (
	utcConditions = []string{
		`time.getHours() >= 8 && time.getHours() < 18`,
		`time.getDayOfWeek() == 1`,
		`time.getDate() == 5 && time.getMonth() == 0 && time.getFullYear() == 2026`,
		`time.getDayOfYear() == 0 || time.getDayOfMonth() == 30`,
		`time.getMinutes() == 30 && time.getSeconds() == 0 && time.getMilliseconds() == 0`,
		`time > timestamp("2026-03-29T01:30:00+01:00")`,
		`string(time) == "2026-01-05T09:00:00Z"`,
		`timestamp("2026-01-05T23:30:00-05:00").getHours() == 4`,
		`int(time) % 86400 < 3600 * 12`,
	}
	instants = []time.Time{
		time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 5, 23, 30, 0, 0, time.UTC),
		time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC),
		time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC),
		time.Date(2025, 12, 31, 23, 59, 59, 999e6, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
)

// tzReport is what a process with some time zone setup computes.
type tzReport struct {
	Refused  []bool   // per zoned condition
	Errors   []string // their errors
	Results  [][]bool // per UTC condition, per instant
	Zone     string   // Europe/Amsterdam's name and offset at instants[0] as this host's database says
	LocalNow string   // instants[0] in time.Local
}

func computeTZReport() tzReport {
	var r tzReport
	for _, src := range zonedConditions {
		_, err := compile(src) // uncached: every process compiles for itself
		r.Refused = append(r.Refused, codes.Of(err) == codes.Invalid)
		r.Errors = append(r.Errors, fmt.Sprint(err))
	}
	for _, src := range utcConditions {
		var row []bool
		for _, at := range instants {
			row = append(row, conditionHolds(src, &Request{Requester: "r", Category: tag("laboratory"), Purpose: "TREAT", At: at}))
		}
		r.Results = append(r.Results, row)
	}
	if loc, err := time.LoadLocation("Europe/Amsterdam"); err != nil {
		r.Zone = "unavailable: " + err.Error()
	} else {
		name, off := instants[0].In(loc).Zone()
		r.Zone = fmt.Sprintf("%s%+d", name, off)
	}
	r.LocalNow = instants[0].Local().Format(time.RFC3339)
	return r
}

// fakeTZif is a TZif (version 1) file for one zone at a fixed offset: another time zone database.
func fakeTZif(offset int32, abbr string) []byte {
	var b bytes.Buffer
	b.WriteString("TZif")
	b.Write(make([]byte, 16)) // version 1, reserved
	// Counts: UT/local indicators, standard/wall indicators, leap seconds, transitions, types, abbreviation bytes.
	for _, n := range []uint32{0, 0, 0, 0, 1, uint32(len(abbr) + 1)} {
		_ = binary.Write(&b, binary.BigEndian, n)
	}
	_ = binary.Write(&b, binary.BigEndian, offset)
	b.WriteByte(0) // isdst
	b.WriteByte(0) // abbreviation index
	b.WriteString(abbr)
	b.WriteByte(0)
	return b.Bytes()
}

const tzChild = "MEDCHAIN_TZ_CHILD"

// Finding 12: a condition such as time.getHours("Europe/Amsterdam") read the host's time zone
// database, so validators with different tzdata (or none) could decide an access differently.
// Zoned accessors are refused at compile time; UTC-only conditions evaluate the same in a
// process without a time zone database and in one whose database says Amsterdam is UTC+5.
func TestAttackCELTimeZone(t *testing.T) {
	if os.Getenv(tzChild) != "" {
		out, _ := json.Marshal(computeTZReport())
		fmt.Printf("TZREPORT %s\n", out)
		return
	}
	parent := computeTZReport()
	for i, refused := range parent.Refused {
		if !refused {
			t.Errorf("zoned condition %q accepted: %s", zonedConditions[i], parent.Errors[i])
		}
	}
	if !slices.ContainsFunc(parent.Results, func(row []bool) bool { return slices.Contains(row, true) }) {
		t.Fatal("no UTC condition holds at any instant: the table tests nothing")
	}

	dir := t.TempDir()
	fake := filepath.Join(dir, "Europe", "Amsterdam")
	if err := os.MkdirAll(filepath.Dir(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fake, fakeTZif(5*3600, "FAKE"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := time.LoadLocationFromTZData("Europe/Amsterdam", fakeTZif(5*3600, "FAKE")); err != nil {
		t.Fatalf("fake tzdata does not parse: %v", err)
	}
	for name, env := range map[string][]string{
		// No database at ZONEINFO and no TZ (the platform's copy, if any, is still searched after
		// ZONEINFO; the next case replaces it).
		"no tzdata": {"ZONEINFO=/nonexistent"},
		// ZONEINFO is searched first: this host's database disagrees, and so does its local zone.
		"other tzdata": {"ZONEINFO=" + dir, "TZ=" + fake},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestAttackCELTimeZone$", "-test.count=1")
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "TZ=") && !strings.HasPrefix(kv, "ZONEINFO=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, append([]string{tzChild + "=1"}, env...)...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			_, line, ok := strings.Cut(string(out), "TZREPORT ")
			if !ok {
				t.Fatalf("child printed no report:\n%s", out)
			}
			line, _, _ = strings.Cut(line, "\n")
			var child tzReport
			if err := json.Unmarshal([]byte(line), &child); err != nil {
				t.Fatal(err)
			}
			t.Logf("child sees Amsterdam as %s, local time %s; parent: %s, %s", child.Zone, child.LocalNow, parent.Zone, parent.LocalNow)
			if name == "other tzdata" && (child.Zone != "FAKE+18000" || !strings.HasSuffix(child.LocalNow, "+05:00")) {
				t.Fatalf("the child's time zone database was not replaced (Amsterdam %s, local %s)", child.Zone, child.LocalNow)
			}
			for i, refused := range child.Refused {
				if !refused {
					t.Errorf("zoned condition %q accepted by the child: %s", zonedConditions[i], child.Errors[i])
				}
			}
			for i := range utcConditions {
				if !slices.Equal(child.Results[i], parent.Results[i]) {
					t.Errorf("%q: child %v, parent %v", utcConditions[i], child.Results[i], parent.Results[i])
				}
			}
		})
	}
}

// Finding 13: a deeply nested 1 KB condition took seconds to compile (type-checking nested
// lists and macros is superlinear in depth). Nesting and node count are bounded, so such a
// condition is refused about as fast as a normal one compiles.
func TestAttackDeepConditionRejectedFast(t *testing.T) {
	if _, err := celEnv(); err != nil {
		t.Fatal(err)
	}
	normal := func(i int) string {
		return fmt.Sprintf(`time.getHours() >= 8 && time.getHours() < 18 && category != "%s" && purpose == "TREAT" && requester != "%d"`, tag("laboratory"), i)
	}
	best := func(f func(i int) error) time.Duration {
		d := time.Duration(1 << 62)
		for i := range 5 {
			start := time.Now()
			if err := f(i); err != nil {
				t.Fatal(err)
			}
			d = min(d, time.Since(start))
		}
		return d
	}
	base := best(func(i int) error { _, err := compile(normal(i)); return err })
	hostile := map[string]string{
		"240 nested lists":    strings.Repeat("[", 240) + strings.Repeat("]", 240) + " == []", // seconds before
		"80 nested maps":      strings.Repeat("[1].map(x,", 80) + "1" + strings.Repeat(")", 80) + " == []",
		"300 parentheses":     strings.Repeat("(", 300) + "true" + strings.Repeat(")", 300),
		"300 negated parens":  strings.Repeat("!(", 300) + "true" + strings.Repeat(")", 300),
		"macro width":         strings.Repeat(`[1].exists(x, x == 1) && `, 40) + "true",
		"nested lists, 1 KB":  strings.Repeat(strings.Repeat("[", 20)+strings.Repeat("]", 20)+" == [] && ", 20) + "true",
		"nested macros, 1 KB": strings.Repeat(strings.Repeat("[1].map(x,", 6)+"1"+strings.Repeat(")", 6)+" == [] && ", 12) + "true",
	}
	for name, src := range hostile {
		if len(src) > MaxConditionBytes {
			t.Fatalf("%s: %d bytes, the test wants conditions within the size limit", name, len(src))
		}
		var err error
		d := best(func(int) error {
			_, err = CompileCondition(src)
			if err == nil {
				return fmt.Errorf("%s: accepted", name)
			}
			return nil
		})
		if codes.Of(err) != codes.Invalid {
			t.Errorf("%s: err = %v, want invalid", name, err)
		}
		t.Logf("%s: refused in %v (a normal condition compiles in %v): %v", name, d, base, err)
		if d > 50*base {
			t.Errorf("%s: refused in %v, over 50 times a normal compile (%v)", name, d, base)
		}
	}
}

// The static cost bound: a condition that may cost more than MaxConditionCost is refused at
// compile time; the runtime limit stays as a backstop for requests larger than a block's (a
// query can ask about any number of organizations).
func TestConditionCostBounds(t *testing.T) {
	if _, err := CompileCondition(`[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, a+b+c > 0)))`); codes.Of(err) != codes.Invalid {
		t.Fatalf("expensive condition: err = %v, want invalid", err)
	}
	src := `orgs.all(a, orgs.all(b, a == b || a != b))`
	if _, err := CompileCondition(src); err != nil {
		t.Fatalf("a condition within the estimate refused: %v", err)
	}
	orgs := func(n int) []tx.Address {
		out := make([]tx.Address, n)
		for i := range out {
			out[i] = tx.Address(fmt.Sprintf("%040d", i))
		}
		return out
	}
	if !conditionHolds(src, &Request{Orgs: orgs(16), At: instants[0]}) {
		t.Fatal("condition denied at its estimated size")
	}
	if conditionHolds(src, &Request{Orgs: orgs(300), At: instants[0]}) {
		t.Fatal("condition over the runtime cost limit held")
	}
}

// The cache of compiled programs is bounded, keyed by the SHA-256 of the source, LRU.
func TestAttackConditionCacheBounded(t *testing.T) {
	c := newProgramCache(3)
	key := func(i int) [32]byte { return [32]byte{byte(i)} }
	p, err := compile(`true`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		c.put(key(i), p)
		if i == 2 {
			c.get(key(0)) // 0 is now more recent than 1
		}
	}
	if _, ok := c.get(key(1)); ok || c.len() != 3 {
		t.Fatalf("LRU did not evict the least recently used entry (len %d)", c.len())
	}
	for _, i := range []int{0, 2, 3} {
		if _, ok := c.get(key(i)); !ok {
			t.Fatalf("entry %d evicted", i)
		}
	}
	// The shared cache: more distinct conditions than it holds.
	for i := range conditionCacheSize + 50 {
		if _, err := CompileCondition(fmt.Sprintf(`requester == "%d"`, i)); err != nil {
			t.Fatal(err)
		}
		if n := programs.len(); n > conditionCacheSize {
			t.Fatalf("cache holds %d programs, bound %d", n, conditionCacheSize)
		}
	}
}

func TestPrecheck(t *testing.T) {
	grant := func(cond string) json.RawMessage {
		raw, _ := json.Marshal(GrantMsg{Grantee: "x", Categories: []string{"*"}, Purposes: []string{"TREAT"}, Expiry: instants[0], Condition: cond})
		return raw
	}
	for name, tc := range map[string]struct {
		typ  string
		msg  json.RawMessage
		want codes.Code
	}{
		"no condition":   {TypeGrant, grant(""), codes.OK},
		"good condition": {TypeGrant, grant(`purpose == "TREAT"`), codes.OK},
		"bad condition":  {TypeGrant, grant(`purpose ==`), codes.Invalid},
		"zoned":          {TypeGrant, grant(`time.getHours("Europe/Amsterdam") < 18`), codes.Invalid},
		"too deep":       {TypeGrant, grant(strings.Repeat("(", 100) + "true" + strings.Repeat(")", 100)), codes.Invalid},
		"malformed":      {TypeGrant, json.RawMessage(`{"grantee":1}`), codes.Malformed},
		"revoke":         {TypeRevoke, json.RawMessage(`{"anything":true}`), codes.OK},
	} {
		if got := codes.Of(Precheck(tc.typ, tc.msg)); got != tc.want {
			t.Errorf("%s: %s, want %s", name, got, tc.want)
		}
	}
}
