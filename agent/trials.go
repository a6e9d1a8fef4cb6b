package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/medchain/medchain/contracts/trials"
	"github.com/medchain/medchain/tx"
)

// ConsentToTrial submits a participant's e-consent (contracts/trials): m.Categories are category
// names, which the agent turns into the patient's tags (the patient's or a guardian's agent draws
// them). m.Patient empty or the agent's own account: the agent consents for itself; else a
// guardian consents for m.Patient. It returns the block the consent committed in.
func (a *Agent) ConsentToTrial(ctx context.Context, m trials.Consent) (int64, error) {
	patient := m.Patient
	if patient == "" || patient == a.Address() {
		patient, m.Patient = a.Address(), ""
	}
	if _, err := a.EnsureTagKey(ctx, patient); err != nil { // the patient's (or a guardian's) agent draws it
		return 0, err
	}
	m.Categories = slices.Clone(m.Categories)
	for i, c := range m.Categories {
		tag, err := a.CategoryTag(ctx, patient, c)
		if err != nil {
			return 0, err
		}
		m.Categories[i] = tag
	}
	res, err := a.signer.Send(ctx, trials.TypeConsent, &m)
	if err != nil {
		return 0, err
	}
	return res.Height, nil
}

// WithdrawFromTrial withdraws patient (the agent's own account, or one it is a guardian of)
// from a trial: no further use of its data from the next block.
func (a *Agent) WithdrawFromTrial(ctx context.Context, patient tx.Address, trial string) (int64, error) {
	m := trials.Withdraw{Trial: trial}
	if patient != a.Address() {
		m.Patient = patient
	}
	res, err := a.signer.Send(ctx, trials.TypeWithdraw, &m)
	if err != nil {
		return 0, err
	}
	return res.Height, nil
}

// Participation is a participation with its categories named for the reader.
type Participation struct {
	trials.Participation
	Trial *trials.Trial
}

// Trials lists patient's trial participations (the patient's or a guardian's agent), with the
// trials themselves and the categories named.
func (a *Agent) Trials(ctx context.Context, patient tx.Address) ([]Participation, error) {
	ps, err := a.node.PatientTrials(ctx, patient)
	if err != nil {
		return nil, err
	}
	out := make([]Participation, 0, len(ps))
	for _, p := range ps {
		t, err := a.node.Trial(ctx, p.Trial)
		if err != nil {
			return nil, fmt.Errorf("agent: trial %s: %w", p.Trial, err)
		}
		p.Categories = a.CategoryNames(ctx, patient, p.Categories)
		out = append(out, Participation{Participation: p, Trial: t})
	}
	return out, nil
}

// ParticipationID is the FHIR id of a participation, both as the participant's research Consent
// and as its ResearchSubject: stable, at most 64 characters whatever the trial id, and naming
// neither the patient nor the trial to whoever sees only the id.
func ParticipationID(trial string, patient tx.Address) string {
	h := sha256.Sum256([]byte(trial + "\n" + string(patient)))
	return "trial-" + hex.EncodeToString(h[:16])
}

// versionOf is the number of t's version whose protocol document has SHA-256 hash (0: none).
func versionOf(t *trials.Trial, hash []byte) int {
	for _, v := range t.Versions {
		if v.Effective && slices.Equal(v.ProtocolHash, hash) {
			return v.Version
		}
	}
	return 0
}
