package programs_test

import (
	"testing"

	"github.com/medchain/medchain/contracts/programs"
)

// TestProgramRuleCompiles: a program's rule compiles when it is boolean CEL over readings and
// days, and is refused otherwise; the 8,000-steps rule holds on three good days only.
func TestProgramRuleCompiles(t *testing.T) {
	for src, ok := range map[string]bool{
		`readings.filter(r, r.code == "http://loinc.org|55423-8" && r.value >= 8000.0).size() >= 3`: true,
		`days + 1`: false, `steps > 1`: false, `readings.(`: false, ``: false,
	} {
		if _, err := programs.CompileRule(src); (err == nil) != ok {
			t.Errorf("%q: %v", src, err)
		}
	}
	p, _ := programs.CompileRule(`readings.filter(r, r.code == "http://loinc.org|55423-8" && r.value >= 8000.0).size() >= 3`)
	eval := func(values ...float64) bool {
		var rs []any
		for i, v := range values {
			rs = append(rs, map[string]any{"code": "http://loinc.org|55423-8", "value": v, "day": int64(20000 + i)})
		}
		out, _, err := p.Eval(map[string]any{"readings": rs, "days": int64(30)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Value().(bool)
	}
	if eval(9000, 7000, 12000) || !eval(9000, 8000, 12000) {
		t.Fatal("the rule does not count good days")
	}
}

// BenchmarkProgramRule evaluates the 8,000-steps rule over a month of daily readings, as the
// sponsor's agent does per patient and period.
func BenchmarkProgramRule(b *testing.B) {
	p, err := programs.CompileRule(`readings.filter(r, r.code == "http://loinc.org|55423-8" && r.value >= 8000.0).size() >= 20`)
	if err != nil {
		b.Fatal(err)
	}
	var rs []any
	for i := range 31 {
		rs = append(rs, map[string]any{"code": "http://loinc.org|55423-8", "value": float64(6000 + 200*i), "day": int64(20000 + i)})
	}
	vars := map[string]any{"readings": rs, "days": int64(31)}
	for b.Loop() {
		if _, _, err := p.Eval(vars); err != nil {
			b.Fatal(err)
		}
	}
}
