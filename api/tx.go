package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/tx"
)

// TxResult is the answer to a submission or a tx lookup.
type TxResult struct {
	Hash   string       `json:"hash"`             // hex SHA-256 of the tx bytes
	Code   uint32       `json:"code"`             // 0 = success; see codes
	Status string       `json:"status"`           // code name
	Log    string       `json:"log,omitempty"`    // why it failed
	Height int64        `json:"height,omitempty"` // block that holds it (wait=commit, lookups)
	Stage  string       `json:"stage"`            // "check" or "commit": how far it got
	Events []abci.Event `json:"events,omitempty"`
}

// submitTx accepts the raw envelope JSON as the body. ?wait=commit (default) answers once the tx
// is in a committed block; ?wait=check answers after CheckTx.
func (s *server) submitTx(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, tx.MaxTxBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeCodeErr(w, codes.TooLarge, fmt.Sprintf("tx body over %d bytes", tx.MaxTxBytes))
			return
		}
		writeErr(w, http.StatusBadRequest, codes.Malformed.String(), "could not read body")
		return
	}
	hash := strings.ToUpper(hex.EncodeToString(types.Tx(raw).Hash()))
	if s.PreVerify != nil {
		s.PreVerify(raw)
	}
	switch wait := r.URL.Query().Get("wait"); wait {
	case "check":
		res, err := s.Broadcaster.BroadcastTxSync(r.Context(), raw)
		if err != nil {
			s.broadcastErr(w, err)
			return
		}
		s.writeResult(w, TxResult{Hash: hash, Code: res.Code, Log: res.Log, Stage: "check"})
	case "", "commit":
		if s.Commits != nil {
			s.submitAndWait(w, r, raw, hash)
			return
		}
		res, err := s.Broadcaster.BroadcastTxCommit(r.Context(), raw)
		if err != nil {
			s.broadcastErr(w, err)
			return
		}
		if res.CheckTx.Code != 0 {
			s.writeResult(w, TxResult{Hash: hash, Code: res.CheckTx.Code, Log: res.CheckTx.Log, Stage: "check"})
			return
		}
		s.writeResult(w, TxResult{Hash: hash, Code: res.TxResult.Code, Log: res.TxResult.Log, Height: res.Height,
			Stage: "commit", Events: res.TxResult.Events})
	default:
		writeErr(w, http.StatusBadRequest, codes.Invalid.String(), "wait must be check or commit")
	}
}

// CommitTimeout is how long a submission waits for its commit before answering 504.
const CommitTimeout = 30 * time.Second

// CommitWaiter tells when a tx commits, without a CometBFT subscription per waiting request,
// and remembers the txs of the last few blocks (CometBFT indexes txs asynchronously).
type CommitWaiter interface {
	AwaitCommit(hash [32]byte) (app.CommitWait, func(), error)
	RecentCommit(hash [32]byte) (app.Committed, bool)
}

// submitAndWait broadcasts raw and waits for the block that holds it.
func (s *server) submitAndWait(w http.ResponseWriter, r *http.Request, raw []byte, hash string) {
	wait, cancel, err := s.Commits.AwaitCommit(sha256.Sum256(raw))
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeErr(w, http.StatusServiceUnavailable, "busy", err.Error())
		return
	}
	defer cancel()
	res, err := s.Broadcaster.BroadcastTxSync(r.Context(), raw)
	if err != nil {
		s.broadcastErr(w, err)
		return
	}
	if res.Code != 0 {
		s.writeResult(w, TxResult{Hash: hash, Code: res.Code, Log: res.Log, Stage: "check"})
		return
	}
	timer := time.NewTimer(CommitTimeout)
	defer timer.Stop()
	select {
	case <-wait.Done():
		c := wait.Committed()
		s.writeResult(w, TxResult{Hash: hash, Code: c.Result.Code, Log: c.Result.Log, Height: c.Height, Stage: "commit", Events: c.Result.Events})
	case <-timer.C:
		s.broadcastErr(w, errors.New("timed out waiting for commit"))
	case <-r.Context().Done():
	}
}

func (s *server) broadcastErr(w http.ResponseWriter, err error) {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "timed out"):
		writeErr(w, http.StatusGatewayTimeout, "timeout", "tx not committed in time; look it up later by hash")
	case strings.Contains(msg, "tx already exists in cache"):
		writeErr(w, http.StatusConflict, "duplicate", "this exact tx was already submitted")
	case strings.Contains(msg, "mempool is full"):
		writeErr(w, http.StatusServiceUnavailable, "busy", "mempool is full; retry shortly")
	default:
		s.Log.Warn("broadcast failed", "err", msg)
		writeErr(w, http.StatusServiceUnavailable, "unavailable", "could not broadcast the tx")
	}
}

func (s *server) writeResult(w http.ResponseWriter, res TxResult) {
	res.Status = codes.Code(res.Code).String()
	status := http.StatusOK
	if res.Code != 0 {
		status = HTTPStatus(codes.Code(res.Code))
	}
	writeJSON(w, status, res)
}

// MaxTxWait bounds GET /v1/txs/{hash}?wait=: how long a lookup may wait for the tx's commit.
const MaxTxWait = 10 * time.Second

// DefaultTxLookupWaits is how many lookups may wait for a commit at once. It is a tenth of
// app.MaxCommitWaiters, so that lookups (which anyone may send, with no tx) can never take the
// waiting slots of submissions.
const DefaultTxLookupWaits = app.MaxCommitWaiters / 10

// getTx looks a committed tx up by its hex hash: in CometBFT's tx index, or, for a tx of the
// last few blocks that the index (asynchronous) may not hold yet, in the app's recent commits,
// so that a tx is found as soon as its commit was reported. Its events and log (they name patients,
// records, categories) are answered only to a request signed by the tx's own signer (or sent in
// its session); anyone else learns whether, where and with what code it committed.
//
// With ?wait=D (a Go duration up to MaxTxWait, e.g. 2s) a tx not committed yet is answered as
// soon as a block holding it commits on this node, or 404 when D runs out: a client waiting for
// its tx learns of the commit at once instead of at its next poll. When TxLookupWaits lookups
// are already waiting, the answer comes from the index at once.
func (s *server) getTx(w http.ResponseWriter, r *http.Request) {
	hash, err := hex.DecodeString(r.PathValue("hash"))
	if err != nil || len(hash) != 32 {
		writeCodeErr(w, codes.Invalid, "hash must be 64 hex characters")
		return
	}
	wait, err := txWait(r.URL.Query().Get("wait"))
	if err != nil {
		writeCodeErr(w, codes.Invalid, err.Error())
		return
	}
	var reader tx.Address
	if r.Header.Get(reqsig.HeaderSigner) != "" {
		// A request that is not validly signed is answered as an unsigned one (a new account
		// polls for its own registration before its key is on chain), except one whose session
		// the node lost: its client opens another and asks again.
		refused := false
		a, ok := s.authenticated(w, r, nil, time.Now(), func(error) { refused = true })
		if !ok && !refused {
			return
		}
		reader = a
	}
	name := strings.ToUpper(hex.EncodeToString(hash))
	// Registered before the index is read, so that a commit between the two is not missed. A
	// node with too many waiting lookups (or waiters) answers at once.
	var done <-chan struct{}
	var waiting app.CommitWait
	if wait > 0 && s.Commits != nil {
		select {
		case s.lookups <- struct{}{}:
			defer func() { <-s.lookups }()
			if cw, cancel, err := s.Commits.AwaitCommit([32]byte(hash)); err == nil {
				defer cancel()
				waiting, done = cw, cw.Done()
			}
		default:
		}
	}
	if wait > 0 && done == nil {
		w.Header().Set(HeaderTxWaited, "0") // the client should back off: this node did not wait
	}
	if res, err := s.Broadcaster.Tx(r.Context(), hash, false); err == nil {
		s.writeResult(w, committedResult(name, reader, signerOf(res.Tx), res.Height, &res.TxResult))
		return
	}
	if s.Commits != nil {
		if c, ok := s.Commits.RecentCommit([32]byte(hash)); ok {
			s.writeResult(w, committedResult(name, reader, c.Signer, c.Height, c.Result))
			return
		}
	}
	if done == nil {
		writeCodeErr(w, codes.NotFound, "no committed tx with that hash")
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-done:
		c := waiting.Committed()
		s.writeResult(w, committedResult(name, reader, c.Signer, c.Height, c.Result))
	case <-timer.C:
		writeCodeErr(w, codes.NotFound, "no committed tx with that hash")
	case <-r.Context().Done():
	}
}

// HeaderTxWaited is set to "0" on a tx lookup's answer when the lookup asked to wait and the
// node could not (its waiting lookups were all taken, or it cannot wait): the client should
// back off instead of asking again at once.
const HeaderTxWaited = "Medchain-Tx-Waited"

// txWait parses a lookup's ?wait= (empty: no wait).
func txWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > MaxTxWait {
		return 0, fmt.Errorf("wait must be a duration from 0s to %s, such as 2s", MaxTxWait)
	}
	return d, nil
}

// committedResult is a committed tx's answer to reader: its log and events only if reader
// signed it.
func committedResult(name string, reader, signer tx.Address, height int64, res *abci.ExecTxResult) TxResult {
	out := TxResult{Hash: name, Code: res.Code, Height: height, Stage: "commit"}
	if reader != "" && signer == reader {
		out.Log, out.Events = res.Log, res.Events
	}
	return out
}

// signerOf is the signer a tx names ("" if it does not decode).
func signerOf(raw []byte) tx.Address {
	t, err := tx.Decode(raw)
	if err != nil {
		return ""
	}
	return t.Body.Signer
}
