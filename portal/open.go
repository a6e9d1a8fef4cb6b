package portal

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/medchain/medchain/agent"
)

// openRecords streams the opening of a patient's records as server-sent events: a "progress"
// event per step of the agent's search (records found, access requests sent, their block,
// records opened), then "done" with the records' HTML, or "failed" with a message. The
// patient page's script shows the steps as they come; without a script the page's link opens
// the records in one response (GET /patients/{id}?now=1).
func (s *Server) openRecords(w http.ResponseWriter, r *http.Request, ses *session) {
	p, ok := s.resolvePatient(r.PathValue("id"))
	if !ok {
		http.Error(w, "No such patient.", http.StatusNotFound)
		return
	}
	if !ses.validToken(r.URL.Query().Get("csrf")) { // it sends access requests: never from another page
		http.Error(w, "This link did not come from this portal.", http.StatusForbidden)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported here", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event, data string) {
		fmt.Fprintf(w, "event: %s\n", event)
		for _, line := range strings.Split(data, "\n") {
			fmt.Fprintf(w, "data: %s\n", line)
		}
		fmt.Fprint(w, "\n")
		flusher.Flush()
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	ctx = agent.WithProgress(ctx, func(pr agent.Progress) { send("progress", pr.Text) })
	data := patientData{Patient: p, Page: pageNumber(r)}
	var err error
	if data.Records, err = timelinePage(ctx, ses.agent, p.Account, data.Page, "/patients/"+p.ID()); err != nil {
		send("failed", "The records could not be read: "+err.Error())
		return
	}
	var buf bytes.Buffer
	if err := s.pages["patient"].ExecuteTemplate(&buf, "records", page{S: ses, Data: data}); err != nil {
		s.cfg.Log.Error("portal: render", "part", "records", "err", err)
		send("failed", "The records could not be shown.")
		return
	}
	send("done", buf.String())
}
