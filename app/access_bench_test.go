package app_test

import (
	"testing"
	"time"

	"github.com/medchain/medchain/contracts/care"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/contracts/telemed"
)

// BenchmarkAccessByBasis: blocks of 100 access requests by one practitioner, each decided (and
// audited) on one basis: a grant, a referral under the patient's standing rule, a telemedicine
// consultation, or none (denied, after every basis was tried). The patient also has ten
// referrals and ten consultations with another provider: a decision past the grants scans the
// referrals; consultations are found through the practitioner's index. Signing is outside the
// timing; ns/access is one request's share of the block.
func BenchmarkAccessByBasis(b *testing.B) {
	const perBlock = 100
	for _, basis := range []string{"grant", "referral", "consultation", "denied"} {
		b.Run(basis, func(b *testing.B) {
			w := newRecordsWorld(b)
			c := w.c
			now := func() time.Time { return genesisTime.Add(time.Duration(c.height+1)*time.Second + c.skew) }
			c.must(w.patient.sign(b, care.TypeRule, care.Rule{Referrer: w.docA.addr, Categories: tags([]string{"laboratory"}), Days: 90}))
			for i := 0; i < 10; i++ {
				c.must(w.docA.sign(b, care.TypeRefer, care.Refer{Patient: w.patient.addr, Rule: 1, To: w.hospital.addr, Categories: tags([]string{"laboratory"})}))
				c.must(w.patient.sign(b, telemed.TypeBook, telemed.Book{Practitioner: w.docA.addr, Categories: tags([]string{"laboratory"}),
					Start: now().Add(time.Duration(10+i) * time.Minute), Minutes: 120, FollowUpDays: 1}))
			}
			who := w.docB
			switch basis {
			case "grant":
				w.grant(b, who, []string{"laboratory"}, "TREAT", false, w.exp)
			case "referral":
				c.must(w.docA.sign(b, care.TypeRefer, care.Refer{Patient: w.patient.addr, Rule: 1, To: who.addr, Categories: tags([]string{"laboratory"})}))
			case "consultation":
				c.must(w.patient.sign(b, telemed.TypeBook, telemed.Book{Practitioner: who.addr, Categories: tags([]string{"laboratory"}),
					Start: now().Add(10 * time.Minute), Minutes: 120, FollowUpDays: 1}))
			}
			if ev := w.access(b, who, records.Access{Patient: w.patient.addr, Category: "laboratory", Purpose: "TREAT"}); (ev.Outcome == records.Granted) != (basis != "denied") || basis != "denied" && ev.Basis != basis {
				b.Fatalf("basis %s: %+v", basis, ev)
			}
			msg := records.Access{Patient: w.patient.addr, Category: tag("laboratory"), Purpose: "TREAT"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				txs := make([][]byte, perBlock)
				for j := range txs {
					txs[j] = who.sign(b, records.TypeAccess, msg)
				}
				b.StartTimer()
				for _, r := range c.block(txs...) {
					if r.Code != 0 {
						b.Fatalf("access: %s", r.Log)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perBlock), "ns/access")
		})
	}
}
