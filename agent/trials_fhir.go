package agent

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/medchain/medchain/contracts/trials"
)

// systemTrial is the identifier system of trials registered on the ledger; systemProtocol names
// a protocol version by its document's SHA-256.
const (
	systemTrial    = "urn:medchain:trial"
	systemProtocol = "urn:medchain:protocol-sha256"
)

// ResearchStudyResource renders a registered trial as a FHIR R4 ResearchStudy: its status, the
// sponsor, the sites, the protocol version in effect, the history of amendments and, once
// published, the results against the pre-registered outcomes (with outcome switching said).
func ResearchStudyResource(t *trials.Trial) ([]byte, error) {
	status := map[string]string{trials.StatusRecruiting: "active", trials.StatusLocked: "closed-to-accrual-and-intervention",
		trials.StatusReported: "completed"}[t.Status]
	current := t.Versions[0]
	var history []string
	for _, v := range t.Versions {
		if v.Version == t.Version {
			current = v
		}
		if v.Version > 1 {
			state := "in effect since " + v.EffectiveAt.UTC().Format(time.DateOnly)
			if !v.Effective {
				state = "awaiting the ethics committee's approval"
			}
			history = append(history, fmt.Sprintf("version %d (%s; material: %t): %s", v.Version, state, v.Material, v.Reason))
		}
	}
	desc := fmt.Sprintf("Protocol version %d in effect (SHA-256 %s).", t.Version, hex.EncodeToString(current.ProtocolHash))
	if len(history) > 0 {
		desc += " Amendments: " + strings.Join(history, "; ") + "."
	}
	if r := t.Results; r != nil {
		desc += fmt.Sprintf(" Results published %s: registered primary outcome %q, reported primary outcome %q.",
			r.At.UTC().Format(time.DateOnly), r.Outcomes.Primary, r.ReportedPrimary)
		if r.OutcomeSwitched {
			desc += " OUTCOME SWITCHING: the results report another primary outcome than the one registered."
		}
	}
	type researchStudy struct {
		ResourceType string       `json:"resourceType"`
		ID           string       `json:"id"`
		Identifier   []identifier `json:"identifier"`
		Title        string       `json:"title"`
		Status       string       `json:"status"`
		Description  string       `json:"description"`
		Period       period       `json:"period"`
		Sponsor      reference    `json:"sponsor"`
		Site         []reference  `json:"site"`
	}
	out := researchStudy{ResourceType: "ResearchStudy", ID: t.ID, Title: t.Title, Status: status, Description: desc,
		Identifier: []identifier{{System: systemTrial, Value: t.ID}, {System: systemProtocol, Value: hex.EncodeToString(current.ProtocolHash)}},
		Period:     period{Start: t.RegisteredAt.UTC().Format(time.RFC3339)}, Sponsor: accountRef(t.Sponsor)}
	for _, s := range t.Sites {
		out.Site = append(out.Site, reference{Identifier: &identifier{System: systemAccount, Value: string(s.Org)}, Display: "site " + s.ID})
	}
	return validated(out)
}

// readResearchStudy answers GET /fhir/ResearchStudy/{id}: a trial registered on the ledger
// (public), as a ResearchStudy.
func (f *Facade) readResearchStudy(w http.ResponseWriter, r *http.Request) {
	t, err := f.agent.node.Trial(r.Context(), r.PathValue("id"))
	if err != nil {
		f.fail(w, notFound(err))
		return
	}
	out, err := ResearchStudyResource(t)
	if err != nil {
		f.fail(w, err)
		return
	}
	writeFHIR(w, http.StatusOK, out)
}
