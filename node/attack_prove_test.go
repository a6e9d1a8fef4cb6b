package node_test

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
)

// TestAttackFakeNodeProof (issue 9, trusted reads): a node with its own validator set, serving
// the same chain id, answered `--prove` reads that verified. Proofs now verify only against
// headers CometBFT's light client verifies from the home's trust anchor, so the real network's
// home rejects the impostor's proofs, before and after its anchor is pinned.
func TestAttackFakeNodeProof(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two real nodes")
	}
	real, realC, realHome := startDev(t)
	fake, fakeC, fakeHome := startDev(t)
	if real.ChainID != fake.ChainID {
		t.Fatalf("the impostor must claim the same chain id: %q vs %q", real.ChainID, fake.ChainID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, c := range []*client.Client{realC, fakeC} {
		if err := c.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	proven := func(c *client.Client, home string) *api.Proven {
		t.Helper()
		_, p, err := c.Account(ctx, devKey(t, home, "registrar").Address, true)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	fakeProof := proven(fakeC, fakeHome)

	// Before any anchor is pinned: the real home pins from its genesis validators, which did not
	// sign the impostor's first header.
	_, err := client.VerifyProven(ctx, realHome, fake.APIAddr, fake.ChainID, fakeProof, 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "genesis validators") {
		t.Fatalf("impostor's proof with no anchor yet: %v", err)
	}
	if _, ok, _ := client.LoadAnchor(realHome); ok {
		t.Fatal("a failed verification pinned an anchor")
	}
	// A proof from the real node verifies and pins the anchor.
	if _, err := client.VerifyProven(ctx, realHome, real.APIAddr, real.ChainID, proven(realC, realHome), 20*time.Second); err != nil {
		t.Fatalf("real proof: %v", err)
	}
	anchor, ok, err := client.LoadAnchor(realHome)
	if err != nil || !ok || anchor.Height != 1 || anchor.ChainID != real.ChainID {
		t.Fatalf("anchor after first verified read: %+v %v %v", anchor, ok, err)
	}
	// With the anchor pinned, the impostor's headers do not chain from it.
	if _, err := client.VerifyProven(ctx, realHome, fake.APIAddr, fake.ChainID, fakeProof, 20*time.Second); err == nil {
		t.Fatal("impostor's proof verified from the pinned anchor")
	}
	// Its own home accepts it: the rejection above is about trust, not a broken proof.
	if _, err := client.VerifyProven(ctx, fakeHome, fake.APIAddr, fake.ChainID, fakeProof, 20*time.Second); err != nil {
		t.Fatalf("impostor's proof in its own home: %v", err)
	}

	// A home with neither an anchor nor a genesis says how to get one.
	empty := t.TempDir()
	if _, err := client.VerifyProven(ctx, empty, real.APIAddr, real.ChainID, fakeProof, 20*time.Second); err == nil ||
		!strings.Contains(err.Error(), "light trust") {
		t.Fatalf("home without anchor: %v", err)
	}
	// An operator-pinned anchor with a wrong hash verifies nothing.
	wrong := anchor
	wrong.Hash = hex.EncodeToString(make([]byte, 32))
	if err := client.SaveAnchor(empty, wrong); err != nil {
		t.Fatal(err)
	}
	if _, err := client.VerifyProven(ctx, empty, real.APIAddr, real.ChainID, proven(realC, realHome), 20*time.Second); err == nil {
		t.Fatal("verified from an anchor whose hash is not the chain's")
	}
	// A chain id that is not the anchor's is refused.
	if _, err := client.VerifyProven(ctx, realHome, real.APIAddr, "other-chain", proven(realC, realHome), 20*time.Second); err == nil {
		t.Fatal("verified for another chain id")
	}
}
