package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"slices"
	"time"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/insurance"
	"github.com/medchain/medchain/coverage"
)

// ProveCoverage makes the patient's proof for a verifier's challenge with a held credential: it
// asks the ledger for the credential's path in its insurer's registry (a revoked credential has
// none), checks the insurer's key against the credential, and proves with the circuit keys genesis
// names. Nothing but the proof and the challenge's own terms leaves the patient's device.
func ProveCoverage(ctx context.Context, c *client.Client, held *coverage.Held, ch *coverage.Challenge) (*insurance.Verify, error) {
	if held.Credential.Insurer != held.Insurer {
		return nil, errors.New("coverage: the credential names another insurer than the one it is held from")
	}
	if ch.Insurer != held.Insurer {
		return nil, fmt.Errorf("coverage: the challenge asks for coverage by %s, the credential is from %s", ch.Insurer, held.Insurer)
	}
	cred := &held.Credential
	if ch.Day < cred.Start || ch.Day > cred.End {
		return nil, fmt.Errorf("coverage: the credential covers %s to %s, not %s", dayString(cred.Start), dayString(cred.End), dayString(ch.Day))
	}
	if !slices.Contains(ch.Plans, cred.Plan) {
		return nil, fmt.Errorf("coverage: the credential's plan is not one of the %d the verifier accepts", len(ch.Plans))
	}
	ins, err := c.Insurer(ctx, held.Insurer)
	if err != nil {
		return nil, fmt.Errorf("coverage: insurer %s: %w", held.Insurer, err)
	}
	if err := coverage.VerifyCredential(ins.Key, &held.Credential); err != nil {
		return nil, err
	}
	leafElement := cred.Leaf()
	leaf := leafElement.Bytes()
	p, err := c.CoveragePath(ctx, held.Insurer, leaf[:])
	if err != nil {
		return nil, fmt.Errorf("coverage: the credential is not in its insurer's registry (revoked?): %w", err)
	}
	if len(p.Siblings) != coverage.Depth {
		return nil, errors.New("coverage: the node answered a malformed registry path")
	}
	var path [coverage.Depth]fr.Element
	for i, s := range p.Siblings {
		if err := path[i].SetBytesCanonical(s); err != nil {
			return nil, errors.New("coverage: the node answered a malformed registry path")
		}
	}
	st := &coverage.Statement{Insurer: string(held.Insurer), Day: ch.Day, Plans: ch.Plans, Verifier: string(ch.Verifier), Account: string(held.Credential.Account)}
	if err := st.Root.SetBytesCanonical(p.Root); err != nil {
		return nil, errors.New("coverage: the node answered a malformed registry root")
	}
	if err := st.Nonce.SetBytesCanonical(ch.Nonce); err != nil {
		return nil, errors.New("coverage: the challenge's nonce is not a canonical field element")
	}
	hashes, err := c.CoverageKeys(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := coverage.CeremonyKeys(*hashes)
	if err != nil {
		return nil, err
	}
	proof, err := coverage.Prove(keys, st, cred, int(p.Index), path)
	if err != nil {
		return nil, err
	}
	return &insurance.Verify{Insurer: held.Insurer, Account: held.Credential.Account, Day: ch.Day, Plans: ch.Plans,
		Root: p.Root, Nonce: ch.Nonce, Proof: proof}, nil
}

func dayString(d uint32) string { return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly) }

// CheckAnswer checks that a proof answers a verifier's own challenge (same insurer, plans, day
// and nonce), before the proof itself is checked: a proof for another challenge, or one a
// patient altered the terms of, is refused here.
func CheckAnswer(ch *coverage.Challenge, m *insurance.Verify) error {
	if m.Insurer != ch.Insurer || m.Day != ch.Day || !slices.Equal(m.Plans, ch.Plans) || !bytes.Equal(m.Nonce, ch.Nonce) {
		return errors.New("coverage: the proof does not answer this challenge (insurer, plans, day or nonce differ)")
	}
	return nil
}
