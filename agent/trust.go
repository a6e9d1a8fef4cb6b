package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

// ErrUntrusted is a node's answer that the ledger, read with proofs checked by the light client,
// contradicts: the node is lying or broken, and the agent goes no further with it.
var ErrUntrusted = errors.New("the node's answer does not match the verified ledger")

// checkRecipientKey checks the encryption key the node gave for a recipient against the ledger.
func (a *Agent) checkRecipientKey(ctx context.Context, addr tx.Address, key []byte) error {
	if a.cfg.Trust == nil {
		return nil
	}
	acc, err := a.cfg.Trust.Account(ctx, a.node, addr)
	if err != nil {
		return fmt.Errorf("verify recipient %s: %w", addr, err)
	}
	if !bytes.Equal(acc.EncryptionKey, key) {
		return fmt.Errorf("recipient %s's encryption key: %w", addr, ErrUntrusted)
	}
	return nil
}

// checkRecord checks what a read relies on in an anchor the node gave (the ciphertext's hash,
// the commitment, whose record it is and what it holds) against the ledger. The wrapped keys need
// no proof: a key that is not the record's fails to open its ciphertext.
func (a *Agent) checkRecord(ctx context.Context, rec *records.Record) error {
	if a.cfg.Trust == nil {
		return nil
	}
	// What is checked never changes for a record version: once verified, it is remembered.
	id := anchorID(rec)
	if _, ok := a.anchors.Load(id); ok {
		return nil
	}
	raw, err := a.cfg.Trust.Get(ctx, a.node, records.VersionKey(rec.ID, rec.Version), rec.Height)
	if err != nil {
		return fmt.Errorf("verify record %s: %w", rec.ID, err)
	}
	var v records.Record
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("verify record %s: %w", rec.ID, err)
	}
	if v.ID != rec.ID || v.Version != rec.Version || v.Patient != rec.Patient || v.ResourceType != rec.ResourceType ||
		v.Category != rec.Category || !bytes.Equal(v.CiphertextHash, rec.CiphertextHash) || !bytes.Equal(v.Commitment, rec.Commitment) {
		return fmt.Errorf("record %s: %w", rec.ID, ErrUntrusted)
	}
	a.anchors.Store(id, struct{}{})
	return nil
}

// verifyAnchors runs checkRecord on recs, openInFlight at once, and ignores what fails: a read
// of the record checks it again and says why.
func (a *Agent) verifyAnchors(ctx context.Context, recs []records.Record) {
	inParallel(len(recs), openInFlight, func(i int) { a.checkRecord(ctx, &recs[i]) })
}

// anchorID is what checkRecord verifies of an anchor, as one string.
func anchorID(rec *records.Record) string {
	return fmt.Sprintf("%s\n%d\n%s\n%s\n%s\n%x\n%x", rec.ID, rec.Version, rec.Patient, rec.ResourceType, rec.Category,
		rec.CiphertextHash, rec.Commitment)
}

// ErrNotReplicated is a write whose anchor committed but whose ciphertext too few nodes hold
// yet: the record exists and replication goes on, but losing the one node that has it would
// lose it, so the write is not reported as a success.
var ErrNotReplicated = errors.New("the ciphertext is not yet held by enough nodes")

// confirmCopies waits until Config.MinCopies nodes (all of them in a smaller network) hold the
// new record's ciphertext.
func (a *Agent) confirmCopies(ctx context.Context, id string, hash []byte) error {
	c, err := a.node.Copies(ctx, a.signer, hash, a.cfg.MinCopies, a.cfg.CopiesWait)
	if err != nil {
		return fmt.Errorf("record %s: count the nodes holding its ciphertext: %w", id, err)
	}
	if c.Held < min(a.cfg.MinCopies, c.Of) {
		return fmt.Errorf("record %s is anchored but its ciphertext is on %d of %d nodes after %s: %w",
			id, c.Held, c.Of, a.cfg.CopiesWait, ErrNotReplicated)
	}
	return nil
}
