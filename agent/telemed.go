package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/telemed"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// Telemedicine (contracts/telemed). The patient's agent books a consultation with an attested
// practitioner for the categories the patient chooses (encounters always, so that the
// practitioner reads the appointment and writes the encounter) and keeps the FHIR Appointment,
// meeting link included, as the patient's encrypted record; the practitioner's EHR then reads
// and writes those categories through the ordinary record paths until the consultation's
// window closes. Video is out of scope.

// systemConsultation identifies a consultation on the ledger in FHIR resources;
// extMeetingLink carries an Appointment's meeting link; extFollowUp its follow-up days.
const (
	systemConsultation = "urn:medchain:consultation"
	extMeetingLink     = "https://medchain.dev/fhir/StructureDefinition/meeting-link"
	extFollowUp        = "https://medchain.dev/fhir/StructureDefinition/follow-up-days"
)

// Booking is a consultation to book.
type Booking struct {
	Practitioner tx.Address
	Categories   []string // names
	Start        time.Time
	Minutes      int
	FollowUpDays int
	MeetingLink  string
}

// BookConsultation books a consultation for the agent's own patient (or one it is a guardian
// of) and stores appointment (a FHIR Appointment; nil: one is made from the booking) as the
// patient's record, with the consultation's identifier added. It returns the consultation's id
// and the stored record.
func (a *Agent) BookConsultation(ctx context.Context, patient tx.Address, b Booking, appointment []byte) (uint64, *Stored, error) {
	if _, err := a.EnsureTagKey(ctx, patient); err != nil { // the patient's (or a guardian's) agent draws it
		return 0, nil, err
	}
	cats := slices.Clone(b.Categories)
	if !slices.Contains(cats, "encounters") {
		cats = append(cats, "encounters")
	}
	tags := make([]string, len(cats))
	for i, c := range cats {
		var err error
		if tags[i], err = a.CategoryTag(ctx, patient, c); err != nil {
			return 0, nil, err
		}
	}
	res, err := a.signer.Send(ctx, telemed.TypeBook, telemed.Book{Patient: a.other(patient), Practitioner: b.Practitioner, Categories: tags,
		Start: b.Start.UTC(), Minutes: b.Minutes, FollowUpDays: b.FollowUpDays})
	if err != nil {
		return 0, nil, err
	}
	id, _ := strconv.ParseUint(client.Event(res, "telemed.booked", "id"), 10, 64)
	if appointment == nil {
		appointment = appointmentOf(b, patient)
	}
	raw, err := withConsultationID(appointment, id)
	if err != nil {
		return id, nil, err
	}
	parsed, err := fhir.Parse(raw)
	if err != nil {
		return id, nil, err
	}
	w, err := a.planAddFor(ctx, parsed, patient, newID())
	if err != nil {
		return id, nil, err
	}
	stored, err := a.anchor(ctx, w)
	return id, stored, err
}

// CancelConsultation cancels a consultation before it starts (the patient, a guardian or the
// practitioner), then marks the patient's Appointment record cancelled.
func (a *Agent) CancelConsultation(ctx context.Context, patient tx.Address, id uint64) error {
	if _, err := a.signer.Send(ctx, telemed.TypeCancel, telemed.Cancel{Patient: patient, ID: id}); err != nil {
		return err
	}
	return a.appointmentStatus(ctx, patient, id, "cancelled")
}

// CompleteConsultation completes a consultation (its practitioner): the follow-up period starts,
// and the patient's Appointment record is marked fulfilled.
func (a *Agent) CompleteConsultation(ctx context.Context, patient tx.Address, id uint64) error {
	if _, err := a.signer.Send(ctx, telemed.TypeComplete, telemed.Complete{Patient: patient, ID: id}); err != nil {
		return err
	}
	return a.appointmentStatus(ctx, patient, id, "fulfilled")
}

// appointmentStatus sets the status of the patient's Appointment record of consultation id (as
// a new version), so that the Appointment a client reads says what the ledger says. An agent
// that may not read or write it any more (a cancelled consultation's practitioner) leaves it:
// the ledger's consultation is the truth.
func (a *Agent) appointmentStatus(ctx context.Context, patient tx.Address, id uint64, status string) error {
	plains, err := a.Search(ctx, patient, "Appointment", nil)
	if err != nil {
		return nil
	}
	want := strconv.FormatUint(id, 10)
	for _, p := range plains {
		var doc map[string]any
		if json.Unmarshal(p.JSON, &doc) != nil {
			continue
		}
		ids, _ := doc["identifier"].([]any)
		if !slices.ContainsFunc(ids, func(v any) bool {
			m, _ := v.(map[string]any)
			return m["system"] == systemConsultation && m["value"] == want
		}) {
			continue
		}
		doc["status"] = status
		raw, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		if _, err := a.Update(ctx, p.Record.ID, raw); err != nil {
			return fmt.Errorf("agent: the consultation is %s on the ledger, but its Appointment record was not updated: %w", status, err)
		}
		return nil
	}
	return nil
}

// appointmentOf is the FHIR Appointment of a booking made without one.
func appointmentOf(b Booking, patient tx.Address) []byte {
	doc := map[string]any{"resourceType": "Appointment", "status": "booked", "start": b.Start.UTC().Format(time.RFC3339),
		"end": b.Start.UTC().Add(time.Duration(b.Minutes) * time.Minute).Format(time.RFC3339), "minutesDuration": b.Minutes,
		"participant": []any{
			map[string]any{"actor": map[string]any{"reference": "Patient/" + string(patient)}, "status": "accepted"},
			map[string]any{"actor": map[string]any{"identifier": map[string]any{"system": systemAccount, "value": string(b.Practitioner)}}, "status": "accepted"},
		}}
	var cats []any
	for _, c := range b.Categories {
		cats = append(cats, map[string]any{"coding": []any{map[string]any{"system": systemCategory, "code": c}}})
	}
	if cats != nil {
		doc["serviceCategory"] = cats
	}
	var ext []any
	if b.MeetingLink != "" {
		ext = append(ext, map[string]any{"url": extMeetingLink, "valueUrl": b.MeetingLink})
	}
	if b.FollowUpDays > 0 {
		ext = append(ext, map[string]any{"url": extFollowUp, "valueInteger": b.FollowUpDays})
	}
	if ext != nil {
		doc["extension"] = ext
	}
	raw, _ := json.Marshal(doc)
	return raw
}

// withConsultationID adds the consultation's identifier to an Appointment.
func withConsultationID(raw []byte, id uint64) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, &fhir.InvalidError{Msg: err.Error()}
	}
	ids, _ := doc["identifier"].([]any)
	doc["identifier"] = append(ids, map[string]any{"system": systemConsultation, "value": strconv.FormatUint(id, 10)})
	return json.Marshal(doc)
}

// BookingFromAppointment reads a posted Appointment as a booking: the practitioner (a
// participant's account identifier other than the patient), start and end (or
// minutesDuration), serviceCategory codings of system urn:medchain:category as the categories,
// and the follow-up days and meeting link extensions.
func BookingFromAppointment(raw []byte, patient tx.Address) (*Booking, error) {
	if _, err := fhir.Parse(raw); err != nil {
		return nil, err
	}
	var ap struct {
		ResourceType    string `json:"resourceType"`
		Status          string `json:"status"`
		Start, End      string
		MinutesDuration int `json:"minutesDuration"`
		Participant     []struct {
			Actor reference `json:"actor"`
		} `json:"participant"`
		ServiceCategory []concept `json:"serviceCategory"`
		Extension       []struct {
			URL          string `json:"url"`
			ValueURL     string `json:"valueUrl"`
			ValueInteger int    `json:"valueInteger"`
		} `json:"extension"`
	}
	if err := json.Unmarshal(raw, &ap); err != nil {
		return nil, &fhir.InvalidError{Msg: err.Error()}
	}
	bad := func(format string, args ...any) error { return &fhir.InvalidError{Msg: fmt.Sprintf(format, args...)} }
	if ap.ResourceType != "Appointment" || (ap.Status != "booked" && ap.Status != "proposed") {
		return nil, bad("a consultation is booked with an Appointment of status booked")
	}
	b := &Booking{}
	for _, p := range ap.Participant {
		if id := p.Actor.Identifier; id != nil && id.System == systemAccount && tx.Address(id.Value) != patient {
			b.Practitioner = tx.Address(id.Value)
		}
	}
	if b.Practitioner.Validate() != nil {
		return nil, bad("Appointment.participant must name the practitioner by its account (identifier system %s)", systemAccount)
	}
	start, err := time.Parse(time.RFC3339, ap.Start)
	if err != nil {
		return nil, bad("Appointment.start is required (an instant)")
	}
	b.Start, b.Minutes = start, ap.MinutesDuration
	if end, err := time.Parse(time.RFC3339, ap.End); err == nil {
		b.Minutes = int(end.Sub(start) / time.Minute)
	}
	for _, c := range ap.ServiceCategory {
		for _, cd := range c.Coding {
			if cd.System == systemCategory {
				b.Categories = append(b.Categories, cd.Code)
			}
		}
	}
	if len(b.Categories) == 0 {
		return nil, bad("Appointment.serviceCategory must name the categories the practitioner may see (system %s)", systemCategory)
	}
	for _, e := range ap.Extension {
		switch e.URL {
		case extMeetingLink:
			b.MeetingLink = e.ValueURL
		case extFollowUp:
			b.FollowUpDays = e.ValueInteger
		}
	}
	return b, nil
}

// bookAppointment answers POST /fhir/Appointment on the patient's (or a guardian's) agent: the
// consultation is booked on the ledger and the Appointment kept as the patient's record.
func (f *Facade) bookAppointment(w http.ResponseWriter, r *http.Request) {
	body, release, ok := f.readBody(w, r)
	if !ok {
		return
	}
	defer release()
	var ap struct {
		Participant []struct {
			Actor reference `json:"actor"`
		} `json:"participant"`
	}
	json.Unmarshal(body, &ap)
	fhirID := ""
	for _, p := range ap.Participant {
		if ref := p.Actor.Reference; strings.HasPrefix(ref, "Patient/") {
			fhirID = strings.TrimPrefix(ref, "Patient/")
		}
	}
	patient, err := f.agent.PatientAccount(fhirID)
	if err == nil && !f.patientAllowed(r.Context(), fhirID, "Appointment", 'c') {
		err = ErrNotFound
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	b, err := BookingFromAppointment(body, patient)
	if err != nil {
		f.fail(w, err)
		return
	}
	_, stored, err := f.agent.BookConsultation(r.Context(), patient, *b, body)
	if err != nil {
		f.fail(w, err)
		return
	}
	id := stored.ServedID()
	w.Header().Set("Location", "/fhir/Appointment/"+id+"/_history/1")
	out, err := fhir.WithServerFields(stored.Resource.JSON, id, "1", instant(time.Now()))
	if err != nil {
		f.fail(w, err)
		return
	}
	writeFHIR(w, http.StatusCreated, out)
}
