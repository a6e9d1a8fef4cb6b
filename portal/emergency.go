package portal

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/medchain/medchain/contracts/records"
)

// Break-glass: a clinician attested for emergency care opens an emergency session on a patient
// with a required reason and reads the emergency categories; the patient is notified, sees the
// access highlighted, and reviews it.

func (s *Server) emergencyRoutes() {
	s.mux.HandleFunc("GET /patients/{id}/emergency", s.in(s.emergencyForm))
	s.mux.HandleFunc("POST /patients/{id}/emergency", s.in(s.breakGlass))
	s.mux.HandleFunc("GET /emergencies", s.in(s.emergencies))
	s.mux.HandleFunc("POST /emergencies/{sid}/review", s.in(s.review))
	s.mux.HandleFunc("GET /notifications", s.in(s.notifications))
}

func (s *Server) emergencyForm(w http.ResponseWriter, r *http.Request, ses *session) {
	s.emergencyPage(w, ses, r.PathValue("id"), "")
}

func (s *Server) emergencyPage(w http.ResponseWriter, ses *session, id, errMsg string) {
	if _, ok := s.resolvePatient(id); !ok {
		s.fail(w, ses, http.StatusNotFound, "No such patient.")
		return
	}
	status := http.StatusOK
	if errMsg != "" {
		status = http.StatusBadRequest
	}
	s.render(w, status, "emergency", page{S: ses, Title: "Emergency access to " + id, Data: id, Error: errMsg})
}

// breakGlass opens the session and shows what it opens.
func (s *Server) breakGlass(w http.ResponseWriter, r *http.Request, ses *session) {
	id := r.PathValue("id")
	p, ok := s.resolvePatient(id)
	acct := p.Account
	if !ok {
		s.fail(w, ses, http.StatusNotFound, "No such patient.")
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if len(reason) < 10 {
		s.emergencyPage(w, ses, id, "Say why this is an emergency (at least 10 characters): the patient and the compliance officer will read it.")
		return
	}
	hours, err := strconv.Atoi(r.PostFormValue("hours"))
	if err != nil || hours < 1 || hours > 24 {
		hours = 4
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	if _, err := ses.agent.EmergencyOpen(ctx, acct, reason, hours); err != nil {
		s.emergencyPage(w, ses, id, "The emergency session was not opened: "+err.Error())
		return
	}
	records, err := timelinePage(ctx, ses.agent.WithPurpose("ETREAT"), acct, 1, "/patients/"+p.ID())
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "The session is open, but the records could not be read: "+err.Error())
		return
	}
	data := patientData{Patient: p, Records: records, Page: 1}
	s.render(w, http.StatusOK, "patient", page{S: ses, Title: "Emergency access to " + id, Data: data,
		Message: "Emergency access is open for " + strconv.Itoa(hours) + " hours; the patient is notified and will review it."})
}

// sessionView is an emergency session as the patient sees it.
type sessionView struct {
	records.EmergencySession
	PractitionerName, Reason string
	Open                     bool
}

func (s *Server) emergencies(w http.ResponseWriter, r *http.Request, ses *session) {
	s.emergenciesPage(w, r, ses, "", "")
}

func (s *Server) emergenciesPage(w http.ResponseWriter, r *http.Request, ses *session, msg, errMsg string) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	list, err := ses.reads.EmergencySessions(ctx, ses.account)
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "Your emergency sessions could not be read: "+err.Error())
		return
	}
	name, now := s.nameOf(ctx), time.Now()
	var views []sessionView
	for i := len(list) - 1; i >= 0; i-- {
		e := list[i]
		reason, err := ses.agent.EmergencyText(ctx, &e, records.TextReason)
		if err != nil {
			reason = "(the reason could not be opened)"
		}
		views = append(views, sessionView{EmergencySession: e, PractitionerName: name(e.Practitioner), Reason: reason,
			Open: e.Ended == nil && now.Before(e.Expires)})
	}
	s.render(w, http.StatusOK, "emergencies", page{S: ses, Title: "Emergency accesses", Data: views, Message: msg, Error: errMsg})
}

// review records the patient's finding on an emergency session: not justified ends it at once.
func (s *Server) review(w http.ResponseWriter, r *http.Request, ses *session) {
	id, err := strconv.ParseUint(r.PathValue("sid"), 10, 64)
	if err != nil {
		s.emergenciesPage(w, r, ses, "", "No such emergency session.")
		return
	}
	justified := r.PostFormValue("justified") == "yes"
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	if err := ses.agent.EmergencyReview(ctx, ses.account, id, strings.TrimSpace(r.PostFormValue("note")), justified); err != nil {
		s.emergenciesPage(w, r, ses, "", "The review was not recorded: "+err.Error())
		return
	}
	msg := "Reviewed: justified."
	if !justified {
		msg = "Reviewed: not justified; the session is ended."
	}
	s.emergenciesPage(w, r, ses, msg, "")
}

// noteView is a notification with its actor's name.
type noteView struct {
	records.Notification
	ActorName string
}

func (s *Server) notifications(w http.ResponseWriter, r *http.Request, ses *session) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	feed, err := ses.reads.Feed(ctx, ses.account)
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "Your notifications could not be read: "+err.Error())
		return
	}
	name := s.nameOf(ctx)
	var views []noteView
	for i := len(feed) - 1; i >= 0; i-- {
		views = append(views, noteView{Notification: feed[i], ActorName: name(feed[i].Actor)})
	}
	s.render(w, http.StatusOK, "notifications", page{S: ses, Title: "Notifications", Data: views})
}
