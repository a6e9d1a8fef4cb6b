package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/medchain/medchain/contracts/notary"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/notaryproof"
)

// MaxNotarizeBatch bounds the documents one $notarize request notarizes (each gets its proof
// assembled before the answer).
const MaxNotarizeBatch = 100

// Notarize notarizes SHA-256 digests in one transaction and returns each one's proof (package
// notaryproof), verifiable offline against the network's validators.
func (a *Agent) Notarize(ctx context.Context, digests [][]byte) ([]*notaryproof.Proof, error) {
	if len(digests) == 0 || len(digests) > notary.MaxDigests {
		return nil, fmt.Errorf("agent: notarize 1..%d digests", notary.MaxDigests)
	}
	var all []byte
	for _, d := range digests {
		if len(d) != sha256.Size {
			return nil, fmt.Errorf("agent: a digest to notarize is a SHA-256 hash (32 bytes), not %d bytes", len(d))
		}
		all = append(all, d...)
	}
	res, err := a.signer.Send(ctx, notary.TypeNotarize, notary.Notarize{Alg: notary.SHA256, Digests: all})
	if err != nil {
		return nil, fmt.Errorf("agent: notarize: %w", err)
	}
	out := make([]*notaryproof.Proof, len(digests))
	for i, d := range digests {
		if out[i], err = a.node.ProveNotarized(ctx, a.signer.ChainID, res.Height, notary.SHA256, d); err != nil {
			return nil, fmt.Errorf("agent: proof of %x: %w", d, err)
		}
	}
	return out, nil
}

// ErrNoTrust says the agent has no light client to verify headers with.
var ErrNoTrust = errors.New("agent: no trust anchor configured (a light client) to verify the network's headers")

// VerifyNotarized verifies a notarization proof of digest: its header, verified by the agent's
// light client from its trust anchor, and the path from the digest to the header's app hash.
func (a *Agent) VerifyNotarized(ctx context.Context, p *notaryproof.Proof, digest []byte) (*notaryproof.Verified, error) {
	if a.cfg.Trust == nil {
		return nil, ErrNoTrust
	}
	return a.cfg.Trust.VerifyNotaryProof(ctx, p, digest)
}

// Notarization through the FHIR facade, Parameters in and out:
//
//	POST /fhir/$notarize          (document*: valueBase64Binary, digest*: valueString hex SHA-256)
//	                              -> height, time, then digest and proof (valueBase64Binary JSON) per document
//	POST /fhir/$verify-notarized  (document or digest, proof) -> verified, height, time (or reason)
//
// An EHR that keeps a document to itself sends its hash only; the agent hashes what it is sent
// and keeps nothing.

// digestsOf reads the documents and digests of a Parameters, in order.
func digestsOf(p *parameters) ([][]byte, error) {
	var out [][]byte
	for _, q := range p.Parameter {
		switch q.Name {
		case "document":
			doc, err := base64.StdEncoding.DecodeString(q.ValueBase64Binary)
			if err != nil {
				return nil, &fhir.InvalidError{Msg: "parameter document: " + err.Error()}
			}
			d := sha256.Sum256(doc)
			out = append(out, d[:])
		case "digest":
			d, err := hex.DecodeString(q.ValueString)
			if err != nil || len(d) != sha256.Size {
				return nil, &fhir.InvalidError{Msg: "parameter digest is a SHA-256 hash in hex (64 characters)"}
			}
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *Facade) notarize(w http.ResponseWriter, r *http.Request) {
	if !f.patientAllowed(r.Context(), "", anyType, 'c') { // the organization's documents: not an app's for one patient
		writeOutcome(w, http.StatusForbidden, "forbidden", "$notarize needs a scope that is not limited to one patient")
		return
	}
	p, ok := f.readParameters(w, r)
	if !ok {
		return
	}
	digests, err := digestsOf(p)
	if err == nil && (len(digests) == 0 || len(digests) > MaxNotarizeBatch) {
		err = &fhir.InvalidError{Msg: fmt.Sprintf("$notarize takes 1..%d parameters document or digest", MaxNotarizeBatch)}
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	proofs, err := f.agent.Notarize(r.Context(), digests)
	if err != nil {
		f.fail(w, err)
		return
	}
	out := []parameter{{Name: "height", ValueString: strconv.FormatInt(proofs[0].Block.Height, 10)}, {Name: "time", ValueInstant: instant(proofs[0].Block.Time)}}
	for i, pr := range proofs {
		out = append(out, parameter{Name: "digest", ValueString: hex.EncodeToString(digests[i])}, base64Param("proof", pr))
	}
	answerParameters(w, out...)
}

func (f *Facade) verifyNotarized(w http.ResponseWriter, r *http.Request) {
	p, ok := f.readParameters(w, r)
	if !ok {
		return
	}
	digests, err := digestsOf(p)
	if err == nil && len(digests) != 1 {
		err = &fhir.InvalidError{Msg: "$verify-notarized takes one parameter document or digest"}
	}
	var proof notaryproof.Proof
	if err == nil {
		err = p.base64JSON("proof", &proof)
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	v, err := f.agent.VerifyNotarized(r.Context(), &proof, digests[0])
	if errors.Is(err, ErrNoTrust) {
		f.fail(w, err)
		return
	}
	if err != nil {
		no := false
		answerParameters(w, parameter{Name: "verified", ValueBoolean: &no}, parameter{Name: "reason", ValueString: err.Error()})
		return
	}
	yes := true
	answerParameters(w, parameter{Name: "verified", ValueBoolean: &yes}, parameter{Name: "height", ValueString: strconv.FormatInt(v.Height, 10)},
		parameter{Name: "time", ValueInstant: instant(v.Time)})
}
