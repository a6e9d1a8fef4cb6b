package app_test

import (
	"context"
	"encoding/json"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
)

// Retention prunes state versions older than the window and tells CometBFT which blocks it may
// drop; the latest state and its proofs stay.
func TestRetentionPrunesOldVersions(t *testing.T) {
	c := newChain(t, newKey("registrar"))
	c.app.SetRetention(app.Retention{StateVersions: 3, Blocks: 2})
	for i := 0; i < 6; i++ {
		c.block(newMember("p"+string(rune('a'+i))).register(t, identity.RolePatient, ""))
	}
	for h, want := range map[int64]bool{1: false, 3: false, 4: true, 6: true} {
		resp, _ := c.app.Query(context.Background(), &abci.RequestQuery{Path: app.PathKey, Data: []byte("x"), Height: h})
		if got := resp.Height == h; got != want {
			t.Errorf("height %d queryable = %v, want %v (%s)", h, got, want, resp.Log)
		}
	}
	c.height++
	if _, err := c.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: c.height, Time: genesisTime}); err != nil {
		t.Fatal(err)
	}
	resp, err := c.app.Commit(context.Background(), &abci.RequestCommit{})
	if err != nil || resp.RetainHeight != c.height-1 {
		t.Fatalf("retain height %d at height %d, want %d (%v)", resp.RetainHeight, c.height, c.height-1, err)
	}
}

// An erased record's wrapped keys (the patient's, the author's and the network wrap) leave the
// latest state at once and the retained history once the retention window has passed: no old
// height still serves them.
func TestAttackErasedKeysLeavePrunedHistory(t *testing.T) {
	w := newRecordsWorld(t)
	c := w.c
	c.app.SetRetention(app.Retention{StateVersions: 3})
	m, _ := w.seal(t, w.patient, "erase-me", 1, "vital-signs", []byte(`{"resourceType":"Observation"}`), nil, nil)
	c.must(w.patient.sign(t, records.TypeAnchor, m))
	anchored := c.height
	keysAt := func(h int64) (records.Record, bool) {
		resp, _ := c.app.Query(context.Background(), &abci.RequestQuery{Path: app.PathKey, Data: records.VersionKey("erase-me", 1), Height: h})
		var rec records.Record
		if resp.Code != 0 || resp.Height != h || json.Unmarshal(resp.Value, &rec) != nil {
			return rec, false
		}
		return rec, true
	}
	if rec, ok := keysAt(anchored); !ok || len(rec.Keys) == 0 || rec.Network == nil {
		t.Fatalf("the anchored record at its height: %+v %v", rec, ok)
	}
	c.must(w.patient.sign(t, records.TypeErase, records.Erase{ID: "erase-me"}))
	if rec, ok := keysAt(c.height); !ok || rec.Keys != nil || rec.Network != nil || rec.Status != records.StatusErased {
		t.Fatalf("after erasure: %+v", rec)
	}
	if rec, ok := keysAt(anchored); !ok || len(rec.Keys) == 0 {
		t.Fatalf("inside the window the old height still answers (as a node must for proofs): %+v %v", rec, ok)
	}
	for range 3 {
		c.block()
	}
	if rec, ok := keysAt(anchored); ok {
		t.Fatalf("a pruned height still serves the erased record's keys: %+v", rec)
	}
}
