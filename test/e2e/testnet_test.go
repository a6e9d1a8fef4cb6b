package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/tx"
)

// freeBase finds a base port such that base .. base+10n+2 are free on loopback. It looks below
// Linux's ephemeral range (32768-60999), where ports other tests and outgoing connections take
// at random could be taken between this check and the node's bind.
func freeBase(t *testing.T, n int) int {
	t.Helper()
	for base := 20000 + int(time.Now().UnixNano()%1000)*10; base < 32000; base += 200 {
		ok := true
		for i := 0; i < n && ok; i++ {
			for j := 0; j < 3; j++ {
				l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+10*i+j))
				if err != nil {
					ok = false
					break
				}
				l.Close()
			}
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

func TestFourValidatorTestnet(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const n = 4
	out := t.TempDir()
	base := freeBase(t, n)
	gen := exec.Command(binary, "testnet", "--validators", "4", "--out", out, "--chain-id", "e2e-net", "--base-port", fmt.Sprint(base))
	gen.Env = append(os.Environ(), "MEDCHAIN_PASSPHRASE=")
	if b, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("testnet: %v\n%s", err, b)
	}
	procs := make([]*proc, n)
	clients := make([]*client.Client, n)
	for i := range procs {
		procs[i] = start(t, "node", "start", "--home", filepath.Join(out, fmt.Sprintf("node%d", i)))
		clients[i] = client.New(fmt.Sprintf("127.0.0.1:%d", base+10*i+2))
	}
	for i := range procs {
		waitHealthy(t, procs[i], clients[i], 1)
	}

	// A registration submitted to node0 is committed by the network and provable on node3.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	k, _ := keyring.Generate("net")
	raw, _ := tx.Sign(k.Signing, "e2e-net", k.Address, 0, identity.TypeRegister, identity.Register{
		Role: identity.RolePatient, EncryptionKey: k.Encryption.PublicKey().Bytes()})
	res, err := clients[0].Submit(ctx, raw, "commit")
	if err != nil || res.Code != 0 {
		t.Fatalf("submit: %+v %v", res, err)
	}
	waitHealthy(t, procs[3], clients[3], res.Height)
	acc, proven, err := clients[3].Account(ctx, k.Address, true)
	if err != nil || acc.Role != identity.RolePatient || acc.Address != k.Address {
		t.Fatalf("node3 account: %+v %v", acc, err)
	}
	v, err := client.VerifyProven(ctx, filepath.Join(out, "node3"), fmt.Sprintf("127.0.0.1:%d", base+32), "e2e-net", proven, 20*time.Second)
	if err != nil {
		t.Fatalf("verify on node3: %v", err)
	}
	if v.Validators != n {
		t.Fatalf("header signed by a set of %d validators, want %d", v.Validators, n)
	}

	// Every node has the same app hash in the header at that height.
	var want string
	for i := 0; i < n; i++ {
		rpc, err := rpchttp.New(fmt.Sprintf("tcp://127.0.0.1:%d", base+10*i+1), "/websocket")
		if err != nil {
			t.Fatal(err)
		}
		h := v.HeaderAt
		waitHealthy(t, procs[i], clients[i], h-1) // a node may be a block behind
		c, err := rpc.Commit(ctx, &h)
		if err != nil {
			t.Fatalf("node%d header %d: %v", i, h, err)
		}
		got := c.SignedHeader.AppHash.String()
		if i == 0 {
			want = got
		} else if got != want {
			t.Fatalf("node%d app hash %s at %d, node0 %s", i, got, h, want)
		}
	}

	// With one of four validators down the network still has >2/3 and keeps committing.
	procs[3].kill()
	st, err := clients[0].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, procs[0], clients[0], st.LatestHeight+2)
	for i := 0; i < 3; i++ {
		procs[i].stop(t)
	}
}
