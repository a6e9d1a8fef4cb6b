package api

import (
	"net/http"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

// Patient-scoped reads (records, history, recipients, access events, audit, emergency sessions,
// feed, settings, fetch log, grants and their state keys) answer only a signed request
// (reqsig: fresh, single-use), and only what its signer may see (app/query_scope.go): the
// patient, a guardian, a grantee for what its grants cover, an auditor. Everyone else gets the
// answer of a patient that does not exist. An unsigned request is refused whatever it names.

// CodeUnsigned is the error code of a patient-scoped read that is not validly signed.
const CodeUnsigned = "unsigned"

// reader returns the verified signer of a patient-scoped read; it reports false after
// answering 401 to a request that is not validly signed.
func (s *server) reader(w http.ResponseWriter, r *http.Request) (tx.Address, bool) {
	return s.authenticated(w, r, nil, time.Now(), func(error) {
		w.Header().Set("WWW-Authenticate", `Medchain-Signature realm="patient data"`)
		writeErr(w, http.StatusUnauthorized, CodeUnsigned,
			"patient data is read with a signed request (X-Medchain-Signer, -Time, -Nonce, -Signature, or a session; see package reqsig)")
	})
}

// scopedQuery runs a patient-scoped query for reader and logs an auditor's read (one the
// answer says was given for the audit scope alone) before the answer goes out. It reports
// false after writing an error response.
func (s *server) scopedQuery(w http.ResponseWriter, r *http.Request, reader tx.Address, req *abci.RequestQuery, name string) (*abci.ResponseQuery, bool) {
	resp, err := s.Querier.Query(r.Context(), req)
	if err != nil {
		writeCodeErr(w, codes.Internal, "query failed")
		return nil, false
	}
	if patient, ok := app.AuditedRead(resp); ok {
		entry := records.FetchEntry{Requester: reader, Patient: patient, Record: name, Kind: records.KindQuery,
			Outcome: records.Granted, Time: time.Now().UTC()}
		if s.Audit == nil || s.Audit.Log(entry) != nil {
			writeErr(w, http.StatusServiceUnavailable, "unavailable", "this node cannot log an audited read now; ask another node")
			return nil, false
		}
	}
	return resp, true
}
