package portal

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/app"
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
	s.mux.HandleFunc("GET /patients/{id}/open", s.in(s.openRecords))
	s.mux.HandleFunc("GET /patients/{id}/add", s.in(s.addRecordPage))
	s.mux.HandleFunc("POST /patients/{id}/add", s.in(s.addRecord))
	s.mux.HandleFunc("GET /network", s.in(s.network))
	s.mux.HandleFunc("GET /network/live", s.in(s.networkLive))
	s.mux.HandleFunc("GET /pharmacy", s.in(s.pharmacy))
	s.mux.HandleFunc("POST /pharmacy/dispense", s.in(s.dispense))
	s.emergencyRoutes()
	s.patientRoutes()
	s.trialRoutes()
	s.careRoutes()
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

// recordsView is a page of a patient's timeline.
type recordsView struct {
	Groups          []group
	From, To, Total int    // the page holds records From..To (1-based) of Total
	Newer, Older    int    // the page numbers of the neighbouring pages, 0 if none
	Base            string // the URL the pages' links add ?page= to
}

// pageNumber is the request's ?page= (1 if absent or invalid).
func pageNumber(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// timelinePage reads page n of the patient's timeline through a, newest first.
func timelinePage(ctx context.Context, a *agent.Agent, patient tx.Address, n int, base string) (recordsView, error) {
	plains, total, err := a.Timeline(ctx, patient, (n-1)*timelinePageSize, timelinePageSize)
	if err != nil && !errors.Is(err, agent.ErrNotFound) {
		return recordsView{}, err
	}
	v := recordsView{Groups: timeline(ctx, a, patient, plains), Total: total, Base: base}
	if len(plains) > 0 {
		v.From = (n-1)*timelinePageSize + 1
		v.To = v.From + len(plains) - 1
	}
	if n > 1 {
		v.Newer = n - 1
	}
	if n*timelinePageSize < total {
		v.Older = n + 1
	}
	return v, nil
}

// timelinePageSize is how many records a page of a timeline shows.
const timelinePageSize = 50

// records is the patient's own records, newest first by anchoring time, a page at a time,
// grouped by category.
func (s *Server) records(w http.ResponseWriter, r *http.Request, ses *session) {
	s.recordsPage(w, r, ses, "")
}

func (s *Server) recordsPage(w http.ResponseWriter, r *http.Request, ses *session, msg string) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	v, err := timelinePage(ctx, ses.agent, ses.account, pageNumber(r), "/records")
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "Your records could not be read from the network: "+err.Error())
		return
	}
	s.render(w, http.StatusOK, "records", page{S: ses, Title: "My records", Data: v, Message: msg})
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

// maxLedgerNames bounds the cache of names read from the ledger.
const maxLedgerNames = 10_000

// nameOf returns how pages name accounts: by their keyring name, else by the name a
// practitioner's or an organization's account carries on the ledger (patients' accounts carry
// none), read once and cached.
func (s *Server) nameOf(ctx context.Context) func(tx.Address) string {
	local := s.names()
	return func(a tx.Address) string {
		if n, ok := local[a]; ok {
			return n
		}
		if n, ok := s.ledgerNames.Load(a); ok {
			return n.(string)
		}
		acc, _, err := s.cfg.Node.Account(ctx, a, false)
		if err != nil {
			return "" // unknown, or the node is not answering: the page shows the address
		}
		if s.ledgerCount.Add(1) <= maxLedgerNames {
			s.ledgerNames.Store(a, acc.Name)
		}
		return acc.Name
	}
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
	name, now := s.nameOf(ctx), time.Now()
	var views []grantView
	for i := len(grants) - 1; i >= 0; i-- {
		g := grants[i]
		g.Categories = ses.agent.CategoryNames(ctx, ses.account, g.Categories)
		views = append(views, grantView{Grant: g, GranteeName: name(g.Grantee), Active: g.ActiveAt(now)})
	}
	find := strings.TrimSpace(r.URL.Query().Get("find"))
	if len(find) > app.MaxDirectoryName {
		find = find[:app.MaxDirectoryName]
	}
	grantees, err := s.cfg.Node.Directory(ctx, find, "", app.MaxPageLimit)
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "The directory of clinicians and organizations could not be read: "+err.Error())
		return
	}
	data := struct {
		Grants     []grantView
		Grantees   []app.DirectoryEntry
		Find       string
		Categories []string
		Purposes   []string
	}{views, grantees, find, consent.Categories, consent.Purposes}
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
	name := s.nameOf(ctx)
	var views []eventView
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		views = append(views, eventView{AccessEvent: e, RequesterName: name(e.Requester),
			CategoryName: ses.agent.CategoryNames(ctx, ses.account, []string{e.Category})[0], Emergency: e.Basis == "emergency"})
	}
	s.render(w, http.StatusOK, "audit", page{S: ses, Title: "Who accessed my data", Data: views})
}

// patientView is a patient a clinician's agent knows, or whose grants name the clinician.
type patientView struct {
	FHIRID  string // "" when the agent does not know the patient's FHIR id
	Account tx.Address
	Name    string
	Grants  []grantView // the patient's grants to the clinician in force
}

// ID is how the portal's links name the patient: its FHIR id, or its account.
func (p patientView) ID() string {
	if p.FHIRID != "" {
		return p.FHIRID
	}
	return string(p.Account)
}

// resolvePatient finds a patient by FHIR id (one the agent serves) or by account.
func (s *Server) resolvePatient(id string) (patientView, bool) {
	if acct, ok := s.cfg.Patients[id]; ok {
		return patientView{FHIRID: id, Account: acct, Name: s.names()[acct]}, true
	}
	acct := tx.Address(id)
	if acct.Validate() != nil {
		return patientView{}, false
	}
	p := patientView{Account: acct, Name: s.names()[acct]}
	for fid, a := range s.cfg.Patients {
		if a == acct {
			p.FHIRID = fid
		}
	}
	return p, true
}

// patients lists the patients whose grants to the clinician are in force (from the ledger's
// index), then the other patients the clinician's agent serves.
func (s *Server) patients(w http.ResponseWriter, r *http.Request, ses *session) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	granted, err := ses.reads.GrantsTo(ctx, ses.account)
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "The patients who granted you access could not be read from the network: "+err.Error())
		return
	}
	names, now := s.names(), time.Now()
	var list, others []patientView
	seen := map[tx.Address]bool{}
	for _, e := range granted {
		p, _ := s.resolvePatient(string(e.Patient))
		for _, g := range e.Grants {
			g.Categories = ses.agent.CategoryNames(ctx, e.Patient, g.Categories)
			p.Grants = append(p.Grants, grantView{Grant: g, GranteeName: names[g.Grantee], Active: g.ActiveAt(now)})
		}
		list, seen[e.Patient] = append(list, p), true
	}
	for id, acct := range s.cfg.Patients {
		if !seen[acct] {
			others = append(others, patientView{FHIRID: id, Account: acct, Name: names[acct]})
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID() < list[j].ID() })
	sort.Slice(others, func(i, j int) bool { return others[i].ID() < others[j].ID() })
	data := struct{ Granted, Others []patientView }{list, others}
	s.render(w, http.StatusOK, "patients", page{S: ses, Title: "Patients", Data: data})
}

// patient opens a patient's records the clinician may read: each category asks the ledger for
// access (an audited request the patient sees), and what is denied does not show.
func (s *Server) patient(w http.ResponseWriter, r *http.Request, ses *session) {
	p, ok := s.resolvePatient(r.PathValue("id"))
	if !ok {
		s.fail(w, ses, http.StatusNotFound, "No such patient.")
		return
	}
	data := patientData{Patient: p, Page: pageNumber(r), Stream: r.URL.Query().Get("now") == ""}
	if !data.Stream && !ses.validToken(r.URL.Query().Get("csrf")) { // it sends access requests
		s.fail(w, ses, http.StatusForbidden, "This link did not come from this portal. Open the patient from your list of patients.")
		return
	}
	if !data.Stream {
		ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
		defer cancel()
		var err error
		if data.Records, err = timelinePage(ctx, ses.agent, p.Account, data.Page, "/patients/"+p.ID()); err != nil {
			s.fail(w, ses, http.StatusBadGateway, "The records could not be read: "+err.Error())
			return
		}
	}
	s.render(w, http.StatusOK, "patient", page{S: ses, Title: "Patient " + p.ID(), Data: data})
}

// patientData is a patient's page: a page of its records, or (Stream) a place the page's
// script fills from GET /patients/{id}/open?page= as the access requests go through.
type patientData struct {
	Patient patientView
	Records recordsView
	Page    int
	Stream  bool
}

// networkView is what the network page shows; it is rendered whole, and its live part again
// every few seconds (GET /network/live).
type networkView struct {
	Status     *api.Status
	Health     string // "" when healthy, else why not
	Validators []api.ValidatorSummary
	Blocks     []api.BlockSummary
	Updated    time.Time
}

func (s *Server) networkData(ctx context.Context) (*networkView, error) {
	st, err := s.cfg.Node.Status(ctx)
	if err != nil {
		return nil, err
	}
	v := &networkView{Status: st, Updated: time.Now()}
	if err := s.cfg.Node.Health(ctx); err != nil {
		v.Health = err.Error()
	}
	if v.Validators, err = s.cfg.Node.Validators(ctx); err != nil {
		return nil, err
	}
	if v.Blocks, err = s.cfg.Node.Blocks(ctx, 10); err != nil {
		return nil, err
	}
	return v, nil
}

// network shows the node's status and health, the validators and the latest blocks with their
// transactions (type and outcome only); the page's script refreshes the live part.
func (s *Server) network(w http.ResponseWriter, r *http.Request, ses *session) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	v, err := s.networkData(ctx)
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "The node is not answering: "+err.Error())
		return
	}
	s.render(w, http.StatusOK, "network", page{S: ses, Title: "Network", Data: v})
}

// networkLive is the network page's live part alone, as HTML.
func (s *Server) networkLive(w http.ResponseWriter, r *http.Request, ses *session) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	v, err := s.networkData(ctx)
	if err != nil {
		http.Error(w, "The node is not answering.", http.StatusBadGateway)
		return
	}
	s.renderPart(w, "network", "live", page{S: ses, Data: v})
}
