package app_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/records"
)

// TestAttackAnchorBatch: a batch of anchors commits all of them or none; each is checked as a
// lone anchor (a write grant, the recipient set), seeing the ones before it; empty and oversized
// batches are refused; the world's blocks replay to the same app hash.
func TestAttackAnchorBatch(t *testing.T) {
	w := newRecordsWorld(t)
	c := w.c
	plain := []byte(`{"resourceType":"Observation","status":"final"}`)
	w.grant(t, w.lab, []string{"laboratory"}, "TREAT", true, w.exp)

	exists := func(id string) bool {
		data, _ := json.Marshal(app.RecordsQuery{ID: id, Reader: w.patient.addr})
		resp, err := c.app.Query(context.Background(), abciQuery(app.PathRecord, data))
		return err == nil && resp.Code == 0
	}
	a1, _ := w.seal(t, w.lab, "batch-1", 1, "laboratory", plain, nil, nil)
	a2, _ := w.seal(t, w.lab, "batch-2", 1, "laboratory", plain, nil, nil)
	// The second anchor of this batch is in a category the lab may not write: neither commits.
	denied, _ := w.seal(t, w.lab, "batch-3", 1, "medications", plain, nil, nil)
	c.expect(w.lab.sign(t, records.TypeAnchorBatch, records.AnchorBatch{Anchors: []records.Anchor{*a1, *denied}}), codes.Unauthorized)
	// Its second anchor repeats the first's version: refused as a lone repeat would be.
	c.expect(w.lab.sign(t, records.TypeAnchorBatch, records.AnchorBatch{Anchors: []records.Anchor{*a1, *a1}}), codes.Invalid)
	if exists("batch-1") {
		t.Fatal("a refused batch kept its first anchor")
	}
	// A version 2 seeing its version 1 earlier in the same batch is fine.
	v2, _ := w.seal(t, w.lab, "batch-1", 2, "laboratory", plain, nil, nil)
	c.must(w.lab.sign(t, records.TypeAnchorBatch, records.AnchorBatch{Anchors: []records.Anchor{*a1, *a2, *v2}}))
	var rec records.Record
	w.recordsQuery(t, app.PathRecord, app.RecordsQuery{ID: "batch-1"}, &rec)
	if rec.Version != 2 || !exists("batch-2") {
		t.Fatalf("after the batch: batch-1 at version %d, batch-2 %v", rec.Version, exists("batch-2"))
	}

	c.expect(w.lab.sign(t, records.TypeAnchorBatch, records.AnchorBatch{}), codes.Invalid)
	many := make([]records.Anchor, records.MaxBatchAnchors+1)
	for i := range many {
		m, _ := w.seal(t, w.lab, fmt.Sprintf("many-%d", i), 1, "laboratory", plain, nil, nil)
		many[i] = *m
	}
	c.expect(w.lab.sign(t, records.TypeAnchorBatch, records.AnchorBatch{Anchors: many}), codes.Invalid)
}

// TestAttackProvenanceSignature: an anchor's provenance signature must be its author's signature
// of the record's statement; the record keeps it with its purpose and transaction hash.
func TestAttackProvenanceSignature(t *testing.T) {
	w := newRecordsWorld(t)
	c := w.c
	w.grant(t, w.lab, []string{"laboratory"}, "TREAT", true, w.exp)
	plain := []byte(`{"resourceType":"Observation","status":"final"}`)

	m, _ := w.seal(t, w.lab, "prov-1", 1, "laboratory", plain, nil, nil)
	m.Purpose = "TREAT"
	m.Signature = ed25519.Sign(w.docA.key.priv, records.ProvenanceStatement(chainID, m)) // another account's key
	c.expect(w.lab.sign(t, records.TypeAnchor, m), codes.BadSignature)
	m.Signature = ed25519.Sign(w.lab.key.priv, records.ProvenanceStatement(chainID, &records.Anchor{ID: "other", Version: 1}))
	c.expect(w.lab.sign(t, records.TypeAnchor, m), codes.BadSignature) // of another statement
	m.Signature = ed25519.Sign(w.lab.key.priv, records.ProvenanceStatement(chainID, m))[:32]
	c.expect(w.lab.sign(t, records.TypeAnchor, m), codes.BadSignature) // truncated
	m.Signature = ed25519.Sign(w.lab.key.priv, records.ProvenanceStatement(chainID, m))
	c.must(w.lab.sign(t, records.TypeAnchor, m))

	var rec records.Record
	w.recordsQuery(t, app.PathRecord, app.RecordsQuery{ID: "prov-1"}, &rec)
	if rec.Purpose != "TREAT" || len(rec.TxHash) != 64 || !ed25519.Verify(w.lab.key.priv.Public().(ed25519.PublicKey), records.ProvenanceStatement(chainID, &records.Anchor{
		ID: rec.ID, Version: rec.Version, Patient: rec.Patient, Commitment: rec.Commitment, CiphertextHash: rec.CiphertextHash, Purpose: rec.Purpose}), rec.Signature) {
		t.Fatalf("the record's provenance: purpose %q, tx %q, signature verifies: false", rec.Purpose, rec.TxHash)
	}
}
