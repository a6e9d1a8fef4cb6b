package portal

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/medchain/medchain/contracts/supply"
	"github.com/medchain/medchain/gs1"
)

// verdict is a scanned pack's verification as the pharmacist's page shows it.
type verdict struct {
	Code     string
	V        *supply.Verification
	Genuine  bool   // may be dispensed
	Problem  string // a malformed code's explanation
	Pharmacy bool   // the session may dispense
}

// pharmacy verifies a scanned or pasted pack code (?code=) and shows the verdict and the pack's
// custody history; a pharmacy may then dispense it.
func (s *Server) pharmacy(w http.ResponseWriter, r *http.Request, ses *session) {
	s.pharmacyPage(w, r, ses, strings.TrimSpace(r.URL.Query().Get("code")), "", "")
}

func (s *Server) pharmacyPage(w http.ResponseWriter, r *http.Request, ses *session, code, msg, errMsg string) {
	d := verdict{Code: code, Pharmacy: ses.orgKind == "pharmacy"}
	if code != "" {
		if len(code) > gs1.MaxCodeBytes {
			d.Problem = "That code is too long to be a pack's code."
		} else {
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			defer cancel()
			v, err := s.cfg.Node.Verify(ctx, code)
			if err != nil {
				d.Problem = "The code could not be verified: " + err.Error()
			} else {
				d.V, d.Genuine = v, v.Status == supply.StatusAuthentic
			}
		}
	}
	s.render(w, http.StatusOK, "pharmacy", page{S: ses, Title: "Verify a pack", Data: d, Message: msg, Error: errMsg})
}

// dispense verifies the pack again and, if it may be dispensed, records its dispensing.
func (s *Server) dispense(w http.ResponseWriter, r *http.Request, ses *session) {
	code := strings.TrimSpace(r.PostFormValue("code"))
	if ses.orgKind != "pharmacy" {
		s.pharmacyPage(w, r, ses, code, "", "Only a pharmacy dispenses.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	v, err := s.cfg.Node.Verify(ctx, code)
	if err != nil || v.Status != supply.StatusAuthentic {
		s.pharmacyPage(w, r, ses, code, "", "Not dispensed: the pack does not verify as authentic.")
		return
	}
	if _, err := ses.signer.Send(ctx, supply.TypeDispense, supply.Items{Items: []string{code}}); err != nil {
		s.pharmacyPage(w, r, ses, code, "", "Not dispensed: "+err.Error())
		return
	}
	s.pharmacyPage(w, r, ses, code, "Dispensed; it is on the ledger.", "")
}
