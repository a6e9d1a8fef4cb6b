package app_test

import (
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/programs"
)

// TestAttackProgramLedgerRules: only an attested insurer or employer defines a program, with a
// boolean CEL rule; only its sponsor credits, an enrolled patient, a period that has begun, once,
// and never with a reading that counted before; a patient who left earns nothing and keeps its
// points on return; redemption is bounded by the balance; there is no transfer. The blocks
// replay to the same app hash.
func TestAttackProgramLedgerRules(t *testing.T) {
	w := newRecordsWorld(t)
	c := w.c
	ins := newMember("insurer")
	c.block(ins.register(t, identity.RoleOrganization, "insurer"))
	c.must(w.reg.sign(t, identity.TypeAttest, identity.Attest{Subject: ins.addr, Licence: "INS", Jurisdiction: "NL", ExpiresAt: w.exp}))
	def := programs.Define{ID: "P-1", Title: "Screening", Rule: `readings.exists(r, r.code == "http://loinc.org|x")`, Points: 50, PeriodDays: 30, Categories: []string{"laboratory"}}
	c.expect(w.hospital.sign(t, programs.TypeDefine, def), codes.Unauthorized)
	for name, rule := range map[string]string{"not CEL": "readings.(", "not boolean": "days + 1", "an unknown variable": "steps > 3"} {
		bad := def
		bad.Rule = rule
		if r := c.block(ins.sign(t, programs.TypeDefine, bad))[0]; codes.Code(r.Code) != codes.Invalid {
			t.Errorf("%s: code %d %s", name, r.Code, r.Log)
		}
	}
	c.must(ins.sign(t, programs.TypeDefine, def))
	reading := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	credit := func(period int, rs ...string) programs.Credit {
		m := programs.Credit{Program: "P-1", Patient: w.patient.addr, Period: period}
		for _, r := range rs {
			m.Readings = append(m.Readings, reading(r))
		}
		return m
	}
	c.expect(ins.sign(t, programs.TypeCredit, credit(0, "r1")), codes.NotFound) // not enrolled
	c.must(w.patient.sign(t, programs.TypeEnroll, programs.Enroll{Program: "P-1"}))
	c.expect(w.lab.sign(t, programs.TypeCredit, credit(0, "r1")), codes.Unauthorized)
	c.expect(ins.sign(t, programs.TypeCredit, credit(1, "r1")), codes.Invalid) // the next period has not begun
	c.must(ins.sign(t, programs.TypeCredit, credit(0, "r1")))
	c.expect(ins.sign(t, programs.TypeCredit, credit(0, "r2")), codes.AlreadyExists)
	c.skew += 31 * 24 * time.Hour
	c.expect(ins.sign(t, programs.TypeCredit, credit(1, "r1")), codes.AlreadyExists) // a reading counts once
	c.must(w.patient.sign(t, programs.TypeLeave, programs.Leave{Program: "P-1"}))
	c.expect(ins.sign(t, programs.TypeCredit, credit(1, "r3")), codes.NotFound)
	c.must(w.patient.sign(t, programs.TypeEnroll, programs.Enroll{Program: "P-1"}))
	c.expect(w.patient.sign(t, programs.TypeRedeem, programs.Redeem{Program: "P-1", Points: 51, Benefit: "x"}), codes.Invalid)
	c.must(w.patient.sign(t, programs.TypeRedeem, programs.Redeem{Program: "P-1", Points: 50, Benefit: "a free screening"}))
	c.expect(w.patient.sign(t, "programs/transfer", map[string]any{"program": "P-1", "to": string(w.docA.addr), "points": 1}), codes.UnknownType)
	data, _ := json.Marshal(app.ProgramQuery{Program: "P-1", Patient: w.patient.addr, Reader: w.patient.addr})
	var v app.ProgramView
	if err := json.Unmarshal(query(t, c, app.PathProgram, data), &v); err != nil || v.Enrollment == nil || v.Enrollment.Balance != 0 || v.Enrollment.Earned != 50 {
		t.Fatalf("the enrollment: %+v %v", v.Enrollment, err)
	}
	data, _ = json.Marshal(app.ProgramQuery{Program: "P-1", Patient: w.patient.addr, Reader: w.docA.addr})
	var stranger app.ProgramView
	if err := json.Unmarshal(query(t, c, app.PathProgram, data), &stranger); err != nil || stranger.Enrollment != nil || stranger.Program == nil {
		t.Fatalf("a stranger's view: %+v", stranger)
	}
}
