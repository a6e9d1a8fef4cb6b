package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/coverage"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// CredentialExtension is the extension of a patient's stored Coverage that holds the coverage
// credential its insurer issued (coverage.Held, JSON, base64): the card and the credential are
// one encrypted record of the patient.
const CredentialExtension = "urn:medchain:coverage-credential"

// StoreCoverage stores a patient's insurance card as the patient's record: the FHIR R4 Coverage
// (its beneficiary set to the patient's account) with the credential in CredentialExtension.
// The credential must be the patient's and say what the card says.
func (a *Agent) StoreCoverage(ctx context.Context, coverageJSON []byte, held *coverage.Held) (*Stored, error) {
	card, err := fhir.ParseCoverageCard(coverageJSON)
	if err != nil {
		return nil, err
	}
	c := &held.Credential
	if card.MemberID != c.MemberID || card.Plan != c.Plan || coverage.Day(card.Start) != c.Start || coverage.Day(card.End) != c.End {
		return nil, &fhir.InvalidError{Msg: "the credential does not say what the Coverage says (member id, plan or period)"}
	}
	var doc map[string]any
	if err := json.Unmarshal(coverageJSON, &doc); err != nil {
		return nil, &fhir.InvalidError{Msg: err.Error()}
	}
	raw, err := json.Marshal(held)
	if err != nil {
		return nil, err
	}
	delete(doc, "id")
	delete(doc, "meta")
	doc["beneficiary"] = map[string]any{"reference": "Patient/" + string(c.Account)}
	ext, _ := doc["extension"].([]any)
	doc["extension"] = append(ext, map[string]any{"url": CredentialExtension, "valueBase64Binary": base64.StdEncoding.EncodeToString(raw)})
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	res, err := fhir.Parse(out)
	if err != nil {
		return nil, err
	}
	return a.AddResource(ctx, res)
}

// heldIn reads the credential out of a stored Coverage.
func heldIn(coverageJSON []byte) (*coverage.Held, error) {
	var doc struct {
		Extension []struct {
			URL   string `json:"url"`
			Value string `json:"valueBase64Binary"`
		} `json:"extension"`
	}
	if err := json.Unmarshal(coverageJSON, &doc); err != nil {
		return nil, err
	}
	for _, e := range doc.Extension {
		if e.URL != CredentialExtension {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(e.Value)
		if err != nil {
			return nil, err
		}
		var h coverage.Held
		if err := json.Unmarshal(raw, &h); err != nil {
			return nil, err
		}
		return &h, nil
	}
	return nil, errors.New("agent: this Coverage holds no coverage credential")
}

// HeldCoverage reads the credential of a Coverage record the agent may read.
func (a *Agent) HeldCoverage(ctx context.Context, id string) (*coverage.Held, error) {
	p, err := a.Read(ctx, id)
	if err != nil {
		return nil, err
	}
	return heldIn(p.JSON)
}

// challenges are the coverage challenges a verifier's agent issued and not yet used: each is
// good for one proof, for ChallengeLifetime.
type challenges struct {
	mu      sync.Mutex
	pending map[string]pendingChallenge // by the nonce's hex
}

type pendingChallenge struct {
	ch      *coverage.Challenge
	expires time.Time
}

// ChallengeLifetime is how long a verifier waits for the proof of a challenge.
const ChallengeLifetime = 15 * time.Minute

// maxPendingChallenges bounds the challenges a verifier's agent holds at once.
const maxPendingChallenges = 10_000

// Challenge issues a coverage challenge as this agent's account: a fresh nonce, remembered until
// a proof answers it or it expires.
func (a *Agent) Challenge(insurer tx.Address, plans []string, day uint32) (*coverage.Challenge, error) {
	if insurer.Validate() != nil || len(plans) == 0 || len(plans) > coverage.MaxPlans {
		return nil, &fhir.InvalidError{Msg: fmt.Sprintf("a coverage challenge names the insurer's account and 1..%d plans", coverage.MaxPlans)}
	}
	nonce, err := coverage.NewNonce()
	if err != nil {
		return nil, err
	}
	ch := &coverage.Challenge{Verifier: a.Address(), Insurer: insurer, Plans: plans, Day: day, Nonce: nonce}
	c := a.challenges
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for k, p := range c.pending {
		if now.After(p.expires) {
			delete(c.pending, k)
		}
	}
	if len(c.pending) >= maxPendingChallenges {
		return nil, errors.New("agent: too many coverage challenges waiting for proofs; try again later")
	}
	c.pending[fmt.Sprintf("%x", nonce)] = pendingChallenge{ch: ch, expires: now.Add(ChallengeLifetime)}
	return ch, nil
}

// VerifyCoverage checks a proof against the challenge this agent issued with its nonce, using
// the challenge up: through the node, or with record on the ledger (every validator checks it
// and the nonce is spent on chain).
func (a *Agent) VerifyCoverage(ctx context.Context, m *insurance.Verify, record bool) error {
	c := a.challenges
	key := fmt.Sprintf("%x", m.Nonce)
	c.mu.Lock()
	p, ok := c.pending[key]
	if ok {
		delete(c.pending, key)
	}
	c.mu.Unlock()
	if !ok || time.Now().After(p.expires) {
		return fmt.Errorf("%w: no pending challenge of this agent has this nonce (used, expired or never issued)", ErrInvalidProof)
	}
	if err := CheckAnswer(p.ch, m); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	if record {
		_, err := a.signer.Send(ctx, insurance.TypeVerify, m)
		return err
	}
	_, err := a.node.VerifyCoverage(ctx, a.Address(), m)
	return err
}

// ErrInvalidProof is a proof of coverage that does not answer one of this agent's challenges.
var ErrInvalidProof = errors.New("agent: not a proof for this verifier")

// CredentialFromCoverage reads a FHIR R4 Coverage as the credential its insurer issues to the
// patient's account (Insurer.Issue then signs it).
func CredentialFromCoverage(coverageJSON []byte, insurer, account tx.Address) (*coverage.Credential, error) {
	card, err := fhir.ParseCoverageCard(coverageJSON)
	if err != nil {
		return nil, err
	}
	if err := account.Validate(); err != nil {
		return nil, fmt.Errorf("agent: the patient's account: %w", err)
	}
	return &coverage.Credential{Insurer: insurer, MemberID: card.MemberID, Plan: card.Plan, Start: coverage.Day(card.Start), End: coverage.Day(card.End), Account: account}, nil
}
