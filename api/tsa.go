package api

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/digitorus/timestamp"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/contracts/notary"
	"github.com/medchain/medchain/notaryproof"
)

// The node's RFC 3161 Time-Stamp Authority (issue 14): POST /tsa takes a TimeStampReq
// (application/timestamp-query) for a hash notarized on the ledger and answers a TimeStampResp
// (application/timestamp-reply) whose token says the hash existed at the time of the block that
// first notarized it, signed by the node's TSA key, and carries that notarization's proof (a
// notaryproof.Proof, JSON) in a non-critical extension, so a verifier need not trust the TSA:
// `medchain verify-notarized` checks the proof against the network's validators. A hash the
// ledger has not notarized is refused (status rejection): notarize it first. GET /tsa/certificate
// answers the TSA's certificate (PEM), the -CAfile of `openssl ts -verify`.

// TSA object identifiers, under 2.25 (ITU-T X.667's UUID arc, which needs no registration):
// three random 30-bit arcs each instead of one 128-bit UUID, because Go's encoding/asn1 (which
// the TSA library and its users parse tokens with) refuses arcs above 2^31. No generated UUID
// has an integer value this small, so the first arc names no one else's UUID.
var (
	// TSAPolicy is the policy of the node's tokens: genTime is the block time of the first
	// notarization of the hash, accurate to the second.
	TSAPolicy = asn1.ObjectIdentifier{2, 25, 873452770, 1015615573, 645619368}
	// OIDNotaryProof is the token extension carrying the notarization's proof (OCTET STRING of
	// a notaryproof.Proof as JSON).
	OIDNotaryProof = asn1.ObjectIdentifier{2, 25, 763376215, 553325690, 944945968}
)

// GenTime is a token's time for a block time t: t rounded up to the whole second (a token's
// GeneralizedTime has no fraction here), so that a token never says a document existed earlier
// than the block that proves it. Tokens state no accuracy: genTime is a bound, not an estimate.
func GenTime(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

// MaxTSAQuery bounds a TimeStampReq's size.
const MaxTSAQuery = 16 << 10

// TSA is the node's time-stamping key and certificate.
type TSA struct {
	Key  crypto.Signer
	Cert *x509.Certificate
}

func (s *server) tsaCertificate(w http.ResponseWriter, _ *http.Request) {
	if s.TSA == nil {
		writeErr(w, http.StatusNotFound, "not_found", "this node runs no time-stamping authority")
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.TSA.Cert.Raw}))
}

func (s *server) timestamp(w http.ResponseWriter, r *http.Request) {
	if s.TSA == nil {
		writeErr(w, http.StatusNotFound, "not_found", "this node runs no time-stamping authority")
		return
	}
	if r.Header.Get("Content-Type") != "application/timestamp-query" {
		writeErr(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send an RFC 3161 TimeStampReq as application/timestamp-query")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxTSAQuery+1))
	if err != nil || len(body) > MaxTSAQuery {
		writeErr(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("a time-stamp query is at most %d bytes", MaxTSAQuery))
		return
	}
	reply := func(der []byte) {
		w.Header().Set("Content-Type", "application/timestamp-reply")
		w.Write(der)
	}
	refuse := func(info timestamp.FailureInfo, why string) {
		s.Log.Info("time-stamp refused", "reason", why)
		der, _ := timestamp.CreateErrorResponse(timestamp.Rejection, info)
		reply(der)
	}
	if !s.takeHeavy(w) {
		return
	}
	defer s.releaseHeavy()
	req, err := timestamp.ParseRequest(body)
	if err != nil {
		refuse(timestamp.BadDataFormat, "malformed request")
		return
	}
	alg := map[crypto.Hash]string{crypto.SHA256: notary.SHA256, crypto.SHA512: notary.SHA512}[req.HashAlgorithm]
	if alg == "" {
		refuse(timestamp.BadAlgorithm, "hash algorithm")
		return
	}
	if req.TSAPolicyOID != nil && !req.TSAPolicyOID.Equal(TSAPolicy) {
		refuse(timestamp.UnacceptedPolicy, "policy")
		return
	}
	p, err := s.notaryProof(r.Context(), alg, req.HashedMessage)
	if err != nil {
		refuse(timestamp.AddInfoNotAvailable, err.Error())
		return
	}
	proof, _ := json.Marshal(p)
	ext, err := asn1.Marshal(proof)
	if err != nil {
		refuse(timestamp.SystemFailure, "encode the proof")
		return
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		refuse(timestamp.SystemFailure, "serial number")
		return
	}
	ts := timestamp.Timestamp{HashAlgorithm: req.HashAlgorithm, HashedMessage: req.HashedMessage, Time: GenTime(p.Block.Time),
		SerialNumber: serial, Policy: TSAPolicy, Nonce: req.Nonce, AddTSACertificate: req.Certificates,
		ExtraExtensions: []pkix.Extension{{Id: OIDNotaryProof, Value: ext}}}
	der, err := ts.CreateResponseWithOpts(s.TSA.Cert, s.TSA.Key, crypto.SHA256)
	if err != nil {
		s.Log.Error("time-stamp token", "err", err)
		refuse(timestamp.SystemFailure, "sign the token")
		return
	}
	reply(der)
}

// notaryProof assembles, from this node's state and block store, the proof of the first
// notarization of digest (nothing in it needs trusting this node: it verifies against the
// validators' signatures).
func (s *server) notaryProof(ctx context.Context, alg string, digest []byte) (*notaryproof.Proof, error) {
	leafBytes, err := notary.Leaf(alg, digest)
	if err != nil {
		return nil, err
	}
	if s.Notarized == nil {
		return nil, fmt.Errorf("this node keeps no notary index")
	}
	h, ok, err := s.Notarized(leafBytes)
	if err != nil || !ok {
		return nil, fmt.Errorf("the hash is not notarized on the ledger: notarize it first (medchain notarize)")
	}
	data, _ := json.Marshal(app.NotaryLeafQuery{Height: h, Alg: alg, Digest: digest})
	resp, err := s.Querier.Query(ctx, &abci.RequestQuery{Path: app.PathNotaryLeaf, Data: data})
	if err != nil || resp.Code != 0 {
		return nil, fmt.Errorf("the hash's place in block %d", h)
	}
	var leaf app.NotaryLeaf
	if err := json.Unmarshal(resp.Value, &leaf); err != nil {
		return nil, err
	}
	key := notary.RootKey(h)
	resp, err = s.Querier.Query(ctx, &abci.RequestQuery{Path: app.PathKey, Data: key, Height: h, Prove: true})
	if err != nil || resp.Code != 0 || resp.ProofOps == nil || len(resp.ProofOps.Ops) != 1 {
		return nil, fmt.Errorf("the state proof of block %d's root", h)
	}
	st := notaryproof.Proven{Height: resp.Height, Key: string(key), Value: resp.Value, Proof: resp.ProofOps.Ops[0].Data}
	lb, err := s.lightBlockAt(ctx, h+1)
	if err != nil {
		return nil, fmt.Errorf("header %d: %w (try again after the next block)", h+1, err)
	}
	return notaryproof.Assemble(s.ChainID, alg, digest, &leaf, st, lb)
}
