package portal

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/contracts/trials"
	"github.com/medchain/medchain/tx"
)

// Clinical trials in the portal: a patient sees the trials it takes part in, reads a trial's
// public registration (protocol in effect, amendments, sites, counts, results and outcome
// switching), consents to the version in effect for the categories it chooses and withdraws;
// the trial's sponsor and regulators also see its participants and the research reads its
// e-consents allowed. Everyone else sees the public registration only.

func (s *Server) trialRoutes() {
	s.mux.HandleFunc("GET /trials", s.in(s.trialsPage))
	s.mux.HandleFunc("GET /trials/{id}", s.in(s.trial))
	s.mux.HandleFunc("POST /trials/{id}/consent", s.in(s.trialConsent))
	s.mux.HandleFunc("POST /trials/{id}/withdraw", s.in(s.trialWithdraw))
}

// trialListMax bounds the participants and reads one trial page shows.
const trialListMax = 100

// trialsPage lists the patient's participations (a patient), with a form to look a trial up.
func (s *Server) trialsPage(w http.ResponseWriter, r *http.Request, ses *session) {
	if id := strings.TrimSpace(r.URL.Query().Get("id")); id != "" {
		http.Redirect(w, r, "/trials/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	var ps []agent.Participation
	if ses.Role == identity.RolePatient {
		var err error
		if ps, err = ses.agent.Trials(ctx, ses.account); err != nil {
			s.fail(w, ses, http.StatusBadGateway, "Your trials could not be read from the network: "+err.Error())
			return
		}
	}
	s.render(w, http.StatusOK, "trials", page{S: ses, Title: "Clinical trials", Data: struct{ Participations []agent.Participation }{ps}})
}

// trialView is what the trial page shows.
type trialView struct {
	Trial        *trials.Trial
	SponsorName  string
	EthicsName   string
	Sites        []siteView
	Protocol     string // the protocol in effect, its SHA-256 in hex
	Mine         *trials.Participation
	CanConsent   bool // a patient, and the trial is recruiting
	Categories   []string
	Overseer     bool // the sponsor or a regulator
	Subjects     []trials.Participation
	Reads        []records.AccessEvent
	ListMax      int
	NameOf       func(tx.Address) string
	Enrolled     int
	Withdrawn    int
	BatchesTotal int
}

type siteView struct {
	trials.Site
	OrgName   string
	Enrolled  int
	Withdrawn int
	Batches   int
}

func (s *Server) trial(w http.ResponseWriter, r *http.Request, ses *session) {
	s.trialPage(w, r, ses, "", "")
}

func (s *Server) trialPage(w http.ResponseWriter, r *http.Request, ses *session, msg, errMsg string) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	id := r.PathValue("id")
	t, err := s.cfg.Node.Trial(ctx, id)
	if client.IsNotFound(err) || len(id) > trials.MaxIDBytes {
		s.fail(w, ses, http.StatusNotFound, "No trial "+id+" is registered on the network. Check the trial's identifier.")
		return
	}
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "The trial could not be read from the network: "+err.Error())
		return
	}
	name := s.nameOf(ctx)
	v := trialView{Trial: t, SponsorName: name(t.Sponsor), EthicsName: name(t.Ethics), ListMax: trialListMax, NameOf: name}
	for _, ver := range t.Versions {
		if ver.Version == t.Version {
			v.Protocol = hex.EncodeToString(ver.ProtocolHash)
		}
	}
	for _, site := range t.Sites {
		sv := siteView{Site: site, OrgName: name(site.Org), Enrolled: t.Enrolled[site.ID], Withdrawn: t.Withdrawn[site.ID], Batches: t.Batches[site.ID]}
		v.Enrolled, v.Withdrawn, v.BatchesTotal = v.Enrolled+sv.Enrolled, v.Withdrawn+sv.Withdrawn, v.BatchesTotal+sv.Batches
		v.Sites = append(v.Sites, sv)
	}
	switch {
	case ses.Role == identity.RolePatient:
		ps, err := ses.agent.Trials(ctx, ses.account)
		if err != nil {
			s.fail(w, ses, http.StatusBadGateway, "Your trials could not be read from the network: "+err.Error())
			return
		}
		if i := slices.IndexFunc(ps, func(p agent.Participation) bool { return p.Participation.Trial == t.ID }); i >= 0 {
			v.Mine = &ps[i].Participation
		}
		v.CanConsent, v.Categories = t.Status == trials.StatusRecruiting, consent.Categories
	case ses.account == t.Sponsor || ses.orgKind == "regulator":
		v.Overseer = true
		if v.Subjects, _, err = ses.reads.TrialSubjectsPage(ctx, t.ID, "", trialListMax); err == nil {
			v.Reads, _, err = ses.reads.TrialReadsPage(ctx, t.ID, "", trialListMax)
		}
		if err != nil {
			s.fail(w, ses, http.StatusBadGateway, "The trial's participants could not be read from the network: "+err.Error())
			return
		}
	}
	status := http.StatusOK
	if errMsg != "" {
		status = http.StatusBadRequest
	}
	s.render(w, status, "trial", page{S: ses, Title: t.Title, Data: v, Message: msg, Error: errMsg})
}

// trialConsent gives the patient's e-consent to the version the page showed, which must still
// be the one in effect (the form carries it), at the chosen site, for the chosen categories.
func (s *Server) trialConsent(w http.ResponseWriter, r *http.Request, ses *session) {
	if ses.Role != identity.RolePatient {
		s.fail(w, ses, http.StatusForbidden, "Only a patient consents to take part in a trial.")
		return
	}
	version, _ := strconv.Atoi(r.PostFormValue("version"))
	cats := r.PostForm["category"]
	switch {
	case r.PostFormValue("read") == "":
		s.trialPage(w, r, ses, "", "Confirm that you have read the protocol before you consent.")
		return
	case r.PostFormValue("site") == "":
		s.trialPage(w, r, ses, "", "Choose the site where you take part.")
		return
	case len(cats) == 0:
		s.trialPage(w, r, ses, "", "Choose at least one kind of data the trial may use.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	_, err := ses.agent.ConsentToTrial(ctx, trials.Consent{Trial: r.PathValue("id"), Site: r.PostFormValue("site"), Version: version, Categories: cats})
	if err != nil {
		s.trialPage(w, r, ses, "", "Your consent was not recorded: "+err.Error())
		return
	}
	s.trialPage(w, r, ses, "Your consent is recorded: from the next block, the trial's investigators at your site may use the data you chose for this trial, and every use shows in who accessed my data.", "")
}

// trialWithdraw withdraws the patient from the trial.
func (s *Server) trialWithdraw(w http.ResponseWriter, r *http.Request, ses *session) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	if _, err := ses.agent.WithdrawFromTrial(ctx, ses.account, r.PathValue("id")); err != nil {
		s.trialPage(w, r, ses, "", "You were not withdrawn: "+err.Error())
		return
	}
	s.trialPage(w, r, ses, "You have withdrawn: from the next block, the trial may use none of your data.", "")
}
