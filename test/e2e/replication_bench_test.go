package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/tx"
)

// TestReplicationLatency measures, on a 4-validator testnet of separate processes, the time from
// an anchor's commit until its ciphertext is on every node's disk, for ~1 KB and ~1 MB records.
// A measurement, not an assertion; run it on its own:
//
//	MEDCHAIN_REPL_BENCH=30 go test -count=1 -run TestReplicationLatency -v ./test/e2e/
func TestReplicationLatency(t *testing.T) {
	var n int
	if _, err := fmt.Sscan(os.Getenv("MEDCHAIN_REPL_BENCH"), &n); err != nil || n < 1 {
		t.Skip("set MEDCHAIN_REPL_BENCH=<records per size> to measure")
	}
	const chainID = "e2e-repl-bench"
	net := startTestnet(t, 4, chainID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	k, _ := keyring.Generate("patient")
	raw, _ := tx.Sign(k.Signing, chainID, k.Address, 0, identity.TypeRegister, identity.Register{
		Role: identity.RolePatient, EncryptionKey: k.Encryption.PublicKey().Bytes()})
	if res, err := net.clients[0].Submit(ctx, raw, "commit"); err != nil || res.Code != 0 {
		t.Fatalf("register: %+v %v", res, err)
	}
	s, err := client.NewSigner(ctx, net.clients[0], k)
	if err != nil {
		t.Fatal(err)
	}
	// MinCopies 1: Add returns right after the commit (node 0 holds the upload), so the clock
	// starts at the commit.
	a := agent.New(s, agent.Config{Patients: map[string]tx.Address{"example": k.Address}, MinCopies: 1})
	for _, size := range []int{1 << 10, 1 << 20} {
		var lat []time.Duration
		for i := range n {
			doc := fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"text":"bench %d"},"subject":{"reference":"Patient/example"},"valueString":"%s"}`,
				i, strings.Repeat("x", size-160))
			stored, err := a.Add(ctx, []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for {
				all := true
				for j := range 4 {
					all = all && net.blobOn(j, stored.Anchor.CiphertextHash)
				}
				if all {
					break
				}
				if time.Since(start) > time.Minute {
					t.Fatalf("record %d not on every node after a minute", i)
				}
				time.Sleep(time.Millisecond)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		t.Logf("replication of %d records of %d bytes to all 4 nodes after commit: p50 %v, p99 %v, max %v",
			n, size, lat[len(lat)/2].Round(time.Millisecond), lat[min(len(lat)-1, len(lat)*99/100)].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	}
}
