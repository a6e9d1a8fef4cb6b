package api

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/tx"
)

// CodeSessionExpired is the error code of a request whose session this node does not hold.
const CodeSessionExpired = "session_expired"

// openSession answers POST /v1/sessions: a signed request opens a session whose MAC then
// authenticates the signer's requests to this node at the cost of an HMAC (see reqsig).
func (s *server) openSession(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, reqsig.MaxSessionOffer+1))
	if err != nil || len(body) > reqsig.MaxSessionOffer {
		writeCodeErr(w, codes.TooLarge, "a session offer is at most 1 KiB")
		return
	}
	g, err := s.signedRequests().OpenSession(r, body, time.Now(), s.signingKey(r.Context()))
	switch {
	case errors.Is(err, reqsig.ErrUnsigned):
		writeErr(w, http.StatusUnauthorized, CodeUnsigned, "a session is opened with a signed request: "+err.Error())
	case errors.Is(err, reqsig.ErrTooManySessions):
		w.Header().Set("Retry-After", "60")
		writeErr(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	case err != nil:
		writeCodeErr(w, codes.Malformed, err.Error())
	default:
		writeJSON(w, http.StatusCreated, g)
	}
}

// authenticated returns the account that signed r (or sent it in a session) for body at now.
// A request whose session this node does not hold is answered 401 with reqsig.HeaderSession
// set to reqsig.SessionExpired, so that its client opens a new one and sends it again; any
// other failure is answered by refuse. It reports false after an answer.
func (s *server) authenticated(w http.ResponseWriter, r *http.Request, body []byte, now time.Time, refuse func(error)) (tx.Address, bool) {
	a, err := s.signedRequests().Verify(r, body, now, s.signingKey(r.Context()))
	switch {
	case errors.Is(err, reqsig.ErrSessionUnknown):
		w.Header().Set(reqsig.HeaderSession, reqsig.SessionExpired)
		writeErr(w, http.StatusUnauthorized, CodeSessionExpired,
			"this node does not hold the request's session (it expired, or the node restarted): open a new one at "+reqsig.SessionPath)
		return "", false
	case err != nil:
		refuse(err)
		return "", false
	}
	return a, true
}
