package portal

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/care"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/telemed"
)

// My care in the portal (issue 17), a patient's page: its telemedicine consultations, which it
// may cancel before they start (the practitioner's access ends with them); its care team's
// tasks, the referrals made for it and its standing referral rules; and a healthy-behaviour
// program looked up by its identifier, with the patient's enrollment and points.

func (s *Server) careRoutes() {
	s.mux.HandleFunc("GET /care", s.in(s.care))
	s.mux.HandleFunc("POST /care/consultations/{id}/cancel", s.in(s.cancelConsultation))
}

type consultationView struct {
	telemed.Consultation
	PractitionerName string
	Until            time.Time // when the practitioner's access ends (none if cancelled)
	Cancellable      bool
}

type taskView struct {
	care.Task
	OwnerName, RequesterName string
	Changed                  time.Time
}

type referralView struct {
	care.Referral
	FromName, ToName string
	Active           bool
}

type ruleView struct {
	care.StandingRule
	ReferrerName string
}

// careData is what the care page shows.
type careData struct {
	Consultations []consultationView
	Tasks         []taskView
	Referrals     []referralView
	Rules         []ruleView
	ProgramID     string
	Program       *app.ProgramView
}

func (s *Server) care(w http.ResponseWriter, r *http.Request, ses *session) {
	s.carePage(w, r, ses, "", "")
}

func (s *Server) carePage(w http.ResponseWriter, r *http.Request, ses *session, msg, errMsg string) {
	if ses.Role != identity.RolePatient {
		s.fail(w, ses, http.StatusNotFound, "My care is a patient's page: its consultations, care tasks and programs.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	cs, err := ses.reads.Consultations(ctx, ses.account)
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "Your consultations could not be read from the network: "+err.Error())
		return
	}
	cv, err := ses.reads.Care(ctx, ses.account)
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "Your care team's tasks could not be read from the network: "+err.Error())
		return
	}
	name, now := s.nameOf(ctx), time.Now()
	var d careData
	for i := len(cs) - 1; i >= 0; i-- { // newest first
		c := cs[i]
		c.Categories = ses.agent.CategoryNames(ctx, ses.account, c.Categories)
		v := consultationView{Consultation: c, PractitionerName: name(c.Practitioner),
			Cancellable: c.Status == telemed.StatusBooked && now.Before(c.Start)}
		if c.Status != telemed.StatusCanceled {
			v.Until = c.Until()
		}
		d.Consultations = append(d.Consultations, v)
	}
	for _, t := range cv.Tasks {
		v := taskView{Task: t, OwnerName: name(t.Owner), RequesterName: name(t.Requester)}
		if n := len(t.History); n > 0 {
			v.Changed = t.History[n-1].At
		}
		d.Tasks = append(d.Tasks, v)
	}
	slices.SortFunc(d.Tasks, func(a, b taskView) int { return b.Changed.Compare(a.Changed) })
	for _, f := range cv.Referrals {
		f.Categories = ses.agent.CategoryNames(ctx, ses.account, f.Categories)
		d.Referrals = append(d.Referrals, referralView{Referral: f, FromName: name(f.From), ToName: name(f.To), Active: !f.Ended && now.Before(f.Until)})
	}
	for _, rl := range cv.Rules {
		rl.Categories = ses.agent.CategoryNames(ctx, ses.account, rl.Categories)
		d.Rules = append(d.Rules, ruleView{StandingRule: rl, ReferrerName: name(rl.Referrer)})
	}
	if id := strings.TrimSpace(r.URL.Query().Get("program")); id != "" && errMsg == "" {
		d.ProgramID = id
		switch p, err := ses.reads.Program(ctx, id, ses.account, nil); {
		case client.IsNotFound(err) || len(id) > 64:
			errMsg = "No program " + id + " is defined on the network. Check the program's identifier."
		case err != nil:
			errMsg = "The program could not be read from the network: " + err.Error()
		default:
			d.Program = p
		}
	}
	status := http.StatusOK
	if errMsg != "" {
		status = http.StatusBadRequest
	}
	s.render(w, status, "care", page{S: ses, Title: "My care", Data: d, Message: msg, Error: errMsg})
}

// cancelConsultation cancels one of the patient's consultations before it starts.
func (s *Server) cancelConsultation(w http.ResponseWriter, r *http.Request, ses *session) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || ses.Role != identity.RolePatient {
		s.carePage(w, r, ses, "", "No such consultation.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	if err := ses.agent.CancelConsultation(ctx, ses.account, id); err != nil {
		s.carePage(w, r, ses, "", "The consultation was not cancelled: "+err.Error())
		return
	}
	s.carePage(w, r, ses, "The consultation is cancelled: from the next block the practitioner may not see your data for it.", "")
}
