package portal

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

func (s *Server) routes() {
	s.mux.HandleFunc("GET /records", s.in(s.records))
	s.mux.HandleFunc("GET /consents", s.in(s.consents))
	s.mux.HandleFunc("POST /consents", s.in(s.grant))
	s.mux.HandleFunc("POST /consents/{id}/revoke", s.in(s.revoke))
	s.mux.HandleFunc("GET /audit", s.in(s.audit))
	s.mux.HandleFunc("GET /patients", s.in(s.patients))
	s.mux.HandleFunc("GET /patients/{id}", s.in(s.patient))
	s.mux.HandleFunc("GET /patients/{id}/add", s.in(s.addRecordPage))
	s.mux.HandleFunc("POST /patients/{id}/add", s.in(s.addRecord))
	s.mux.HandleFunc("GET /network", s.in(s.network))
	s.mux.HandleFunc("GET /pharmacy", s.in(s.pharmacy))
	s.mux.HandleFunc("POST /pharmacy/dispense", s.in(s.dispense))
	s.emergencyRoutes()
}

// pageTimeout bounds a page's work against the node (an access request waits for its block).
const pageTimeout = 30 * time.Second

// group is a category of records, newest first.
type group struct {
	Category string
	Records  []summary
}

// timeline groups decrypted records by category (names where the reader can tell them).
func timeline(ctx context.Context, a *agent.Agent, patient tx.Address, plains []agent.Plain) []group {
	by := map[string][]summary{}
	for _, p := range plains {
		cat := a.CategoryNames(ctx, patient, []string{p.Record.Category})[0]
		by[cat] = append(by[cat], summarize(p.Record.ID, p.JSON))
	}
	var out []group
	for cat, rs := range by {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Date > rs[j].Date })
		out = append(out, group{Category: cat, Records: rs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Category < out[j].Category })
	return out
}

// records is the patient's own records as a timeline by category.
func (s *Server) records(w http.ResponseWriter, r *http.Request, ses *session) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	plains, err := ses.agent.Search(ctx, ses.account, "", nil)
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "Your records could not be read from the network: "+err.Error())
		return
	}
	s.render(w, http.StatusOK, "records", page{S: ses, Title: "My records", Data: timeline(ctx, ses.agent, ses.account, plains)})
}

// grantView is a grant as the consents page shows it.
type grantView struct {
	consent.Grant
	GranteeName string
	Active      bool
}

// names maps the keyring's addresses to their names, for showing accounts by name.
func (s *Server) names() map[tx.Address]string {
	out := map[tx.Address]string{}
	for _, a := range s.accounts() {
		out[a.Address] = a.Name
	}
	return out
}

func (s *Server) consents(w http.ResponseWriter, r *http.Request, ses *session) {
	s.consentsPage(w, r, ses, "", "")
}

func (s *Server) consentsPage(w http.ResponseWriter, r *http.Request, ses *session, msg, errMsg string) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	grants, err := ses.reads.Grants(ctx, ses.account)
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "Your consents could not be read from the network: "+err.Error())
		return
	}
	names, now := s.names(), time.Now()
	var views []grantView
	for i := len(grants) - 1; i >= 0; i-- {
		g := grants[i]
		g.Categories = ses.agent.CategoryNames(ctx, ses.account, g.Categories)
		views = append(views, grantView{Grant: g, GranteeName: names[g.Grantee], Active: g.ActiveAt(now)})
	}
	var grantees []account
	for _, a := range s.accounts() {
		if a.Address != ses.account {
			grantees = append(grantees, a)
		}
	}
	data := struct {
		Grants     []grantView
		Grantees   []account
		Categories []string
		Purposes   []string
	}{views, grantees, consent.Categories, consent.Purposes}
	status := http.StatusOK
	if errMsg != "" {
		status = http.StatusBadRequest
	}
	s.render(w, status, "consents", page{S: ses, Title: "Who may see my data", Data: data, Message: msg, Error: errMsg})
}

// grant submits a consent grant from the form.
func (s *Server) grant(w http.ResponseWriter, r *http.Request, ses *session) {
	grantee := tx.Address(r.PostFormValue("grantee"))
	if grantee.Validate() != nil {
		s.consentsPage(w, r, ses, "", "Choose who to grant access to.")
		return
	}
	cats := r.PostForm["category"]
	for _, c := range cats {
		if !slices.Contains(consent.Categories, c) {
			s.consentsPage(w, r, ses, "", "Unknown category "+c+".")
			return
		}
	}
	if len(cats) == 0 {
		s.consentsPage(w, r, ses, "", "Choose at least one category of data.")
		return
	}
	purpose := r.PostFormValue("purpose")
	if !slices.Contains(consent.Purposes, purpose) {
		s.consentsPage(w, r, ses, "", "Choose the purpose the access is for.")
		return
	}
	days, err := strconv.Atoi(r.PostFormValue("days"))
	if err != nil || days < 1 || days > 3650 {
		s.consentsPage(w, r, ses, "", "The access lasts 1 to 3650 days.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	_, err = ses.agent.Grant(ctx, consent.GrantMsg{Grantee: grantee, Categories: cats, Purposes: []string{purpose},
		Expiry: time.Now().AddDate(0, 0, days).UTC(), Write: r.PostFormValue("write") == "on"})
	if err != nil {
		s.consentsPage(w, r, ses, "", "The grant was not recorded: "+err.Error())
		return
	}
	s.consentsPage(w, r, ses, "Access granted; it is on the ledger.", "")
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request, ses *session) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		s.consentsPage(w, r, ses, "", "No such grant.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	if err := ses.agent.Revoke(ctx, ses.account, id); err != nil {
		s.consentsPage(w, r, ses, "", "The grant was not revoked: "+err.Error())
		return
	}
	s.consentsPage(w, r, ses, "Access revoked: from the next block on, it opens nothing.", "")
}

// eventView is an access event as the audit page shows it.
type eventView struct {
	records.AccessEvent
	RequesterName string
	CategoryName  string
	Emergency     bool
}

// audit is "who accessed my data": every access request, granted or denied, newest first;
// emergency accesses stand out.
func (s *Server) audit(w http.ResponseWriter, r *http.Request, ses *session) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	evs, err := ses.reads.Audit(ctx, ses.account, client.AuditFilter{})
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "Your audit trail could not be read from the network: "+err.Error())
		return
	}
	names := s.names()
	var views []eventView
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		views = append(views, eventView{AccessEvent: e, RequesterName: names[e.Requester],
			CategoryName: ses.agent.CategoryNames(ctx, ses.account, []string{e.Category})[0], Emergency: e.Basis == "emergency"})
	}
	s.render(w, http.StatusOK, "audit", page{S: ses, Title: "Who accessed my data", Data: views})
}

// patientView is a patient a clinician's agent knows.
type patientView struct {
	FHIRID  string
	Account tx.Address
	Name    string
}

// patients lists the patients the clinician's agent serves.
func (s *Server) patients(w http.ResponseWriter, r *http.Request, ses *session) {
	names := s.names()
	var list []patientView
	for id, acct := range s.cfg.Patients {
		list = append(list, patientView{FHIRID: id, Account: acct, Name: names[acct]})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].FHIRID < list[j].FHIRID })
	s.render(w, http.StatusOK, "patients", page{S: ses, Title: "Patients", Data: list})
}

// patient opens a patient's records the clinician may read: each category asks the ledger for
// access (an audited request the patient sees), and what is denied does not show.
func (s *Server) patient(w http.ResponseWriter, r *http.Request, ses *session) {
	id := r.PathValue("id")
	acct, ok := s.cfg.Patients[id]
	if !ok {
		s.fail(w, ses, http.StatusNotFound, "No such patient.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	plains, err := ses.agent.Search(ctx, acct, "", nil)
	if err != nil && !errors.Is(err, agent.ErrNotFound) {
		s.fail(w, ses, http.StatusBadGateway, "The records could not be read: "+err.Error())
		return
	}
	data := struct {
		Patient patientView
		Groups  []group
	}{patientView{FHIRID: id, Account: acct, Name: s.names()[acct]}, timeline(ctx, ses.agent, acct, plains)}
	s.render(w, http.StatusOK, "patient", page{S: ses, Title: "Patient " + id, Data: data})
}

// network shows the node's status.
func (s *Server) network(w http.ResponseWriter, r *http.Request, ses *session) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	st, err := s.cfg.Node.Status(ctx)
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "The node is not answering: "+err.Error())
		return
	}
	s.render(w, http.StatusOK, "network", page{S: ses, Title: "Network", Data: st})
}
