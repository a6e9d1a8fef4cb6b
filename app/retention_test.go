package app_test

import (
	"context"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/contracts/identity"
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
