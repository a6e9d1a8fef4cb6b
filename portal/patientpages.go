package portal

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

// The patient's own pages besides records, consents and audit: erasing a record, guardians.
func (s *Server) patientRoutes() {
	s.mux.HandleFunc("GET /records/{id}/erase", s.in(s.eraseConfirm))
	s.mux.HandleFunc("POST /records/{id}/erase", s.in(s.erase))
	s.mux.HandleFunc("GET /guardians", s.in(s.guardians))
	s.mux.HandleFunc("POST /guardians", s.in(s.addGuardian))
	s.mux.HandleFunc("POST /guardians/{addr}/remove", s.in(s.removeGuardian))
}

// eraseView is the confirmation of a record's erasure.
type eraseView struct {
	Record summary
}

// eraseConfirm asks the patient to confirm erasing one record, showing what it is.
func (s *Server) eraseConfirm(w http.ResponseWriter, r *http.Request, ses *session) {
	s.eraseForm(w, r, ses, "")
}

func (s *Server) eraseForm(w http.ResponseWriter, r *http.Request, ses *session, errMsg string) {
	id := r.PathValue("id")
	if records.ValidID(id) != nil {
		s.fail(w, ses, http.StatusNotFound, "No such record.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	p, err := ses.agent.Read(ctx, id)
	if err != nil || p.Record.Patient != ses.account {
		s.fail(w, ses, http.StatusNotFound, "No such record among yours.")
		return
	}
	status := http.StatusOK
	if errMsg != "" {
		status = http.StatusBadRequest
	}
	s.render(w, status, "erase", page{S: ses, Title: "Erase a record", Data: eraseView{Record: summarize(id, p.JSON)}, Error: errMsg})
}

// erase erases one of the patient's records once the patient confirmed: every node deletes its
// ciphertext and the ledger marks it erased (its anchor stays, as proof that it existed).
func (s *Server) erase(w http.ResponseWriter, r *http.Request, ses *session) {
	id := r.PathValue("id")
	if records.ValidID(id) != nil { // never empty: an empty id would erase every record
		s.fail(w, ses, http.StatusNotFound, "No such record.")
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		s.eraseForm(w, r, ses, "Tick the box to confirm that the record is to be erased for good.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	if _, err := ses.agent.Erase(ctx, ses.account, id); err != nil {
		s.eraseForm(w, r, ses, "The record was not erased: "+err.Error())
		return
	}
	s.recordsPage(w, r, ses, "The record is erased: no node holds it any more, and no one can open it again.")
}

// guardianView is a guardian as the guardians page shows it.
type guardianView struct {
	Address tx.Address
	Name    string
}

func (s *Server) guardians(w http.ResponseWriter, r *http.Request, ses *session) {
	s.guardiansPage(w, r, ses, "", "")
}

// guardiansPage shows the accounts that may act for the patient (read its records, grant and
// revoke for it), with a form to name another and a button to remove each.
func (s *Server) guardiansPage(w http.ResponseWriter, r *http.Request, ses *session, msg, errMsg string) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	acc, _, err := ses.reads.Account(ctx, ses.account, false)
	if err != nil {
		s.fail(w, ses, http.StatusBadGateway, "Your account could not be read from the network: "+err.Error())
		return
	}
	name := s.nameOf(ctx)
	var views []guardianView
	for _, g := range acc.Guardians {
		views = append(views, guardianView{Address: g, Name: name(g)})
	}
	status := http.StatusOK
	if errMsg != "" {
		status = http.StatusBadRequest
	}
	data := struct {
		Guardians []guardianView
		Max       int
	}{views, identity.MaxGuardians}
	s.render(w, status, "guardians", page{S: ses, Title: "Guardians", Data: data, Message: msg, Error: errMsg})
}

// setGuardians replaces the patient's guardian list with change applied to the current one.
func (s *Server) setGuardians(ctx context.Context, ses *session, change func([]tx.Address) ([]tx.Address, error)) error {
	acc, _, err := ses.reads.Account(ctx, ses.account, false)
	if err != nil {
		return err
	}
	list, err := change(slices.Clone(acc.Guardians))
	if err != nil {
		return err
	}
	return ses.agent.SetGuardians(ctx, list)
}

func (s *Server) addGuardian(w http.ResponseWriter, r *http.Request, ses *session) {
	g := tx.Address(r.PostFormValue("guardian"))
	if g.Validate() != nil {
		s.guardiansPage(w, r, ses, "", "Give the guardian's account address (40 hexadecimal characters; they find it in their own app).")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	err := s.setGuardians(ctx, ses, func(list []tx.Address) ([]tx.Address, error) {
		if slices.Contains(list, g) {
			return nil, errors.New("this account is already your guardian")
		}
		return append(list, g), nil
	})
	if err != nil {
		s.guardiansPage(w, r, ses, "", "The guardian was not added: "+err.Error())
		return
	}
	s.guardiansPage(w, r, ses, "Guardian added: from the next block on, they may act for you.", "")
}

func (s *Server) removeGuardian(w http.ResponseWriter, r *http.Request, ses *session) {
	g := tx.Address(r.PathValue("addr"))
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	err := s.setGuardians(ctx, ses, func(list []tx.Address) ([]tx.Address, error) {
		i := slices.Index(list, g)
		if i < 0 {
			return nil, errors.New("this account is not your guardian")
		}
		return slices.Delete(list, i, i+1), nil
	})
	if err != nil {
		s.guardiansPage(w, r, ses, "", "The guardian was not removed: "+err.Error())
		return
	}
	s.guardiansPage(w, r, ses, "Guardian removed: from the next block on, they can no longer act for you.", "")
}
