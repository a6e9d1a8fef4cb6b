// Package api is the node's HTTP API (JSON under /v1): submit signed transactions and wait for
// CheckTx or commit, look transactions up, query accounts and attestations with ics23 Merkle
// proofs, node status and health, and Prometheus metrics. Every request body is size-limited and
// every error is a JSON object with a stable code; internal detail stays in the logs.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpcclient "github.com/cometbft/cometbft/rpc/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/reqsig"
)

// Querier answers ABCI queries; *app.App is one.
type Querier interface {
	Query(context.Context, *abci.RequestQuery) (*abci.ResponseQuery, error)
}

// Config wires the API to a node.
type Config struct {
	ChainID     string
	Broadcaster rpcclient.Client // CometBFT's client: broadcast, tx lookup, status
	Querier     Querier
	Blobs       blob.Store       // ciphertexts, served only against granted access events
	Audit       FetchAuditor     // logs every ciphertext request before it is answered; nil serves none
	Uploads     UploadGate       // quotas and collection of unanchored uploads; nil admits all
	Replicas    Replicas         // peers to fetch a missing ciphertext from; nil: none
	KeyShare    func() *KeyShare // this node's current share of the network key (nil: none); nil releases none
	Commits     CommitWaiter     // tells submissions waiting for commit; nil uses CometBFT's subscriptions
	// PreVerify, if set, decodes a submitted tx and checks its signature in the request's own
	// goroutine, before the mempool's serialized CheckTx (which then finds it done).
	PreVerify  func(raw []byte)
	StallAfter time.Duration // health fails after this long without a block (default DefaultStallAfter)
	// TxLookupWaits bounds the tx lookups waiting for a commit at once (default
	// DefaultTxLookupWaits); the others are answered from the index without waiting.
	TxLookupWaits int
	TSA           *TSA // the RFC 3161 time-stamping key and certificate; nil runs none
	// Notarized finds the height that first notarized a leaf (the node's notary index).
	Notarized func(leaf []byte) (height int64, ok bool, err error)
	Metrics   *prometheus.Registry
	Log       *slog.Logger
}

type server struct {
	Config
	// heavy bounds the requests that read a block's notarized leaves at once (a notary leaf's
	// path, a time stamp): a block can hold half a million of them.
	heavy        chan struct{}
	lookups      chan struct{} // tx lookups waiting for a commit (TxLookupWaits)
	verifierOnce sync.Once
	verifier     *reqsig.Verifier
	wraps        wrapCache
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
}

// New returns the API handler.
func New(c Config) http.Handler {
	if c.TxLookupWaits <= 0 {
		c.TxLookupWaits = DefaultTxLookupWaits
	}
	s := &server{Config: c, heavy: make(chan struct{}, maxHeavy), lookups: make(chan struct{}, c.TxLookupWaits),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "medchain", Name: "api_requests_total",
			Help: "API requests by route and HTTP status."}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "medchain", Name: "api_request_seconds",
			Help: "API request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"}),
	}
	c.Metrics.MustRegister(s.requests, s.latency)
	mux := http.NewServeMux()
	s.route(mux, "POST /v1/txs", s.submitTx)
	s.route(mux, "GET /v1/txs/{hash}", s.getTx)
	s.route(mux, "GET /v1/accounts/{addr}", s.getAccount)
	s.route(mux, "GET /v1/accounts/{addr}/attestations", s.getAttestations)
	s.route(mux, "GET /v1/registrars", s.getRegistrars)
	s.route(mux, "GET /v1/network/members", s.getMembers)
	s.route(mux, "GET /v1/network/proposals/{id}", s.getNetworkProposal)
	s.route(mux, "GET /v1/accounts/{addr}/affiliations", s.accountList(app.PathAffiliations))
	s.route(mux, "GET /v1/proposals/{id}", s.getProposal)
	s.route(mux, "GET /v1/state/{key...}", s.getKey)
	s.route(mux, "GET /v1/supply/verify", s.supplyVerify)
	s.route(mux, "GET /v1/supply/epcis", s.supplyEPCIS)
	s.route(mux, "GET /v1/supply/shipments/{id}", s.supplyShipment)
	s.route(mux, "GET /v1/supply/products/{gtin}", s.supplyProduct)
	s.route(mux, "GET /v1/insurance/coverage-keys", s.coverageKeys)
	s.route(mux, "GET /v1/insurance/insurers/{address}", s.insurer)
	s.route(mux, "GET /v1/insurance/path", s.coveragePath)
	s.route(mux, "POST /v1/insurance/verify", s.coverageVerify)
	s.route(mux, "GET /v1/insurance/verifications/{verifier}/{nonce}", s.coverageVerification)
	s.route(mux, "GET /v1/insurance/claims/{provider}/{id}", s.claim)
	s.route(mux, "GET /v1/insurance/policies/{insurer}/{id}", s.policy)
	s.route(mux, "GET /v1/insurance/balances/{address}", s.balance)
	s.routeRecords(mux)
	s.route(mux, "PUT /v1/blobs/{hash}", s.putBlob)
	s.route(mux, "GET /v1/blobs/{hash}", s.getBlob)
	s.route(mux, "GET /v1/blobs/{hash}/copies", s.blobCopies)
	s.route(mux, "POST "+ReleasePath, s.releaseKey)
	s.route(mux, "POST "+ReleaseBatchPath, s.releaseKeyBatch)
	s.route(mux, "POST "+reqsig.SessionPath, s.openSession)
	s.route(mux, "GET "+LightPath+"{height}", s.lightBlock)
	s.route(mux, "POST "+EvidencePath, s.reportEvidence)
	s.route(mux, "GET /v1/blocks", s.getBlocks)
	s.route(mux, "GET /v1/validators", s.getValidators)
	s.route(mux, "GET /v1/notary/leaf", s.notaryLeaf)
	s.route(mux, "GET /v1/trials/{id}", s.getTrial)
	s.route(mux, "GET /v1/trials/{id}/subjects", s.trialSubjects)
	s.route(mux, "GET /v1/trials/{id}/batches", s.trialBatches)
	s.route(mux, "GET /v1/trials/{id}/reads", s.trialReads)
	s.researchRoutes(mux)
	s.route(mux, "GET /v1/patients/{addr}/trials", s.patientTrials)
	s.route(mux, "POST /tsa", s.timestamp)
	s.route(mux, "GET /tsa/certificate", s.tsaCertificate)
	s.route(mux, "GET /v1/status", s.status)
	s.route(mux, "GET /v1/health", s.health)
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.Metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// route registers h with metrics and a panic guard that answers 500 without detail.
func (s *server) route(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: 200}
		defer func() {
			if p := recover(); p != nil {
				s.Log.Error("handler panic", "route", pattern, "panic", p)
				writeErr(sw, http.StatusInternalServerError, codes.Internal.String(), "internal error")
			}
			s.requests.WithLabelValues(pattern, http.StatusText(sw.status)).Inc()
			s.latency.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
		}()
		h(sw, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

// Error is the JSON body of every error response.
type Error struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	var e Error
	e.Error.Code, e.Error.Message = code, msg
	writeJSON(w, status, e)
}

// writeCodeErr maps a result code to an HTTP status.
func writeCodeErr(w http.ResponseWriter, c codes.Code, msg string) {
	writeErr(w, HTTPStatus(c), c.String(), msg)
}

// HTTPStatus is the HTTP status the API uses for a result code.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.NotFound:
		return http.StatusNotFound
	case codes.TooLarge:
		return http.StatusRequestEntityTooLarge
	case codes.Unauthorized, codes.BadSignature, codes.KeyMismatch, codes.UnknownSigner:
		return http.StatusForbidden
	case codes.AlreadyExists, codes.BadNonce:
		return http.StatusConflict
	case codes.Internal:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// No indentation: values carry stored JSON whose exact bytes their Merkle proofs cover.
	json.NewEncoder(w).Encode(v)
}
