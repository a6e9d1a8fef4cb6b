package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/tx"
)

// networkKey reads the network key from a node.
func networkKey(t *testing.T, c *client.Client) *network.Key {
	t.Helper()
	p, err := c.State(context.Background(), network.KeyStateKey(), false)
	if err != nil {
		t.Fatal(err)
	}
	var k network.Key
	if err := json.Unmarshal(p.Value, &k); err != nil {
		t.Fatal(err)
	}
	return &k
}

// waitReshared waits for a network key past epoch held by exactly want, with the public key
// of before, and returns it.
func waitReshared(t *testing.T, c *client.Client, before *network.Key, want ...tx.Address) *network.Key {
	t.Helper()
	var k *network.Key
	waitFor(t, 2*time.Minute, fmt.Sprintf("the network key re-shared past epoch %d to %d holders", before.Epoch, len(want)), func() bool {
		k = networkKey(t, c)
		if k.Epoch <= before.Epoch || len(k.Holders) != len(want) {
			return false
		}
		for _, a := range want {
			if k.HolderOf(a) == nil {
				return false
			}
		}
		return true
	})
	if string(k.Key()) != string(before.Key()) {
		t.Fatal("re-sharing changed the network's public key")
	}
	return k
}

// heldShare reads a home's share and checks it against key.
func heldShare(t *testing.T, home string, key *network.Key) *netkey.Share {
	t.Helper()
	var s *netkey.Share
	waitFor(t, 30*time.Second, "the share of epoch "+fmt.Sprint(key.Epoch)+" in "+filepath.Base(home), func() bool {
		var err error
		s, err = node.LoadNetworkShare(home)
		return err == nil && s != nil && s.Epoch == key.Epoch
	})
	if err := key.Public.Check(s); err != nil {
		t.Fatalf("%s: %v", home, err)
	}
	return s
}

// cli runs the medchain binary and fails the test on error.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "MEDCHAIN_PASSPHRASE=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("medchain %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func nodeIdentity(t *testing.T, home string) node.Identity {
	t.Helper()
	var id node.Identity
	if err := json.Unmarshal([]byte(cli(t, "node", "identity", "--home", home)), &id); err != nil {
		t.Fatal(err)
	}
	return id
}

// validatorSet returns the validator set CometBFT applies at the latest height, by address.
func validatorSet(t *testing.T, rpc *rpchttp.HTTP) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := rpc.Validators(ctx, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, v := range res.Validators {
		out[v.Address.String()] = v.VotingPower
	}
	return out
}

// waitSnapshot waits until every node holds a snapshot at a height >= min and the chain is two
// blocks past it (state sync verifies the next headers), checks the snapshot is byte-identical
// on all nodes, and returns its height.
func waitSnapshot(t *testing.T, net *testnet, min int64) int64 {
	t.Helper()
	var height int64
	waitFor(t, 90*time.Second, "a snapshot on every node", func() bool {
		height = 0
		entries, _ := os.ReadDir(node.SnapshotDir(net.home(0)))
		for _, e := range entries {
			var h int64
			if _, err := fmt.Sscan(e.Name(), &h); err == nil && h > height {
				height = h
			}
		}
		if height < min {
			return false
		}
		for i := range net.procs {
			if _, err := os.Stat(filepath.Join(node.SnapshotDir(net.home(i)), fmt.Sprint(height), "metadata")); err != nil {
				return false
			}
		}
		return true
	})
	meta := func(i int) []byte {
		b, err := os.ReadFile(filepath.Join(node.SnapshotDir(net.home(i)), fmt.Sprint(height), "metadata"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for i := 1; i < len(net.procs); i++ {
		if string(meta(i)) != string(meta(0)) {
			t.Fatalf("node %d's snapshot at height %d differs from node 0's", i, height)
		}
	}
	waitHealthy(t, net.procs[0], net.clients[0], height+2)
	return height
}

// signedLatest reports whether the validator with addr (upper-case hex) signed the latest commit.
func signedLatest(t *testing.T, rpc *rpchttp.HTTP, addr string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rpc.Commit(ctx, nil)
	if err != nil {
		return false
	}
	for _, s := range c.Commit.Signatures {
		if s.ValidatorAddress.String() == addr && s.BlockIDFlag == types.BlockIDFlagCommit {
			return true
		}
	}
	return false
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestNetworkJoinAndLeave: a fifth organization's node is created with `node join --state-sync`,
// starts from the other nodes' snapshot (byte-identical on all four) instead of replaying from
// genesis, follows the chain, is admitted as a validator by the registrar's vote and signs
// blocks; then a validator that died is voted out and another's key is rotated (stopped,
// voted, new key in place, restarted: it signs again), and the chain commits throughout.
func TestNetworkJoinAndLeave(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	net := startTestnetWith(t, 4, "e2e-members", func(home string) {
		s, err := node.LoadSettings(home)
		if err != nil {
			t.Fatal(err)
		}
		// Snapshots every 3 blocks, kept for 30: the joining node picks one and may take seconds
		// (a loaded CI machine) to verify it with the light client before it asks for its
		// chunks; a snapshot pruned meanwhile answers no chunk and stalls state sync.
		s.SnapshotInterval, s.SnapshotKeepRecent = 3, 10
		if err := node.SaveSettings(home, s); err != nil {
			t.Fatal(err)
		}
	})
	rpc0, err := rpchttp.New(fmt.Sprintf("tcp://127.0.0.1:%d", net.base+1), "/websocket")
	if err != nil {
		t.Fatal(err)
	}
	regFlags := []string{"--home", net.home(0), "--from", "registrar", "--node", fmt.Sprintf("http://127.0.0.1:%d", net.base+2)}

	// The fifth node joins with the genesis and peers of the running network.
	ports, err := node.FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	var peers, apis []string
	for i := range 4 {
		peers = append(peers, nodeIdentity(t, net.home(i)).P2P)
		apis = append(apis, fmt.Sprintf("http://127.0.0.1:%d", net.base+10*i+2))
	}
	snap := waitSnapshot(t, net, 3)
	home5 := filepath.Join(net.dir, "org5")
	out := cli(t, "node", "join", "--home", home5, "--genesis", filepath.Join(net.home(0), "config", "genesis.json"),
		"--peers", strings.Join(peers, ","), "--peer-apis", strings.Join(apis, ","), "--moniker", "org5",
		"--state-sync", "--rpc-servers", fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d", net.base+1, net.base+21),
		"--p2p-port", fmt.Sprint(ports.P2P), "--rpc-port", fmt.Sprint(ports.RPC), "--api-port", fmt.Sprint(ports.API))
	id5 := nodeIdentity(t, home5)
	if !strings.Contains(out, id5.PubKey) {
		t.Fatalf("join output does not name the consensus key:\n%s", out)
	}
	started := time.Now()
	p5 := start(t, "node", "start", "--home", home5)
	c5 := client.New(fmt.Sprintf("127.0.0.1:%d", ports.API))
	st, _ := net.clients[0].Status(context.Background())
	waitHealthy(t, p5, c5, st.LatestHeight) // it follows the chain as a full node
	t.Logf("org5 started from the snapshot of height %d and was healthy at height %d after %s", snap, st.LatestHeight, time.Since(started).Round(time.Millisecond))
	rpc5, err := rpchttp.New(fmt.Sprintf("tcp://127.0.0.1:%d", ports.RPC), "/websocket")
	if err != nil {
		t.Fatal(err)
	}
	if s5, err := rpc5.Status(context.Background()); err != nil || s5.SyncInfo.EarliestBlockHeight < snap {
		t.Fatalf("org5 holds blocks from height %d, want it to start from a snapshot at %d or later (%v)\n%s",
			s5.SyncInfo.EarliestBlockHeight, snap, err, p5.output())
	}
	if !strings.Contains(p5.output(), "state sync: state restored") {
		t.Fatalf("org5 did not restore a snapshot:\n%s", p5.output())
	}

	// Before admission it is no member and no validator.
	addr5 := strings.ToUpper(string(id5.Address)) // CometBFT shows the same SHA-256[:20] address in upper-case hex
	if _, ok := validatorSet(t, rpc0)[addr5]; ok {
		t.Fatal("a node that was not admitted is a validator")
	}
	// The registrar (the only one: its vote is two thirds) admits it with power 10.
	key0 := networkKey(t, net.clients[0]) // the dealt genesis key
	out = cli(t, append([]string{"network", "propose", "--action", "add", "--pub-key", id5.PubKey, "--power", "10", "--name", "org5"}, regFlags...)...)
	if !strings.Contains(out, "network.admitted") || !strings.Contains(out, "network.validator_update") {
		t.Fatalf("admission:\n%s", out)
	}
	waitFor(t, 30*time.Second, "org5 in the validator set", func() bool { return validatorSet(t, rpc0)[addr5] == 10 })
	// It signs blocks.
	waitFor(t, 30*time.Second, "a commit signed by org5", func() bool { return signedLatest(t, rpc0, addr5) })
	if acc, _, err := c5.Account(context.Background(), id5.Address, false); err != nil || acc.Role != identity.RoleNode {
		t.Fatalf("org5's node account: %+v %v", acc, err)
	}

	// The validators re-share the network key to the five of them over the ledger: same public
	// key, a new epoch, org5 holds a share, and a record written before reads after.
	var all []tx.Address
	for i := range 4 {
		all = append(all, nodeIdentity(t, net.home(i)).Address)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	people := registerPeople(t, ctx, net, "e2e-members")
	recordID := people.labResultForDocB(t, ctx, 0)
	key1 := waitReshared(t, net.clients[0], key0, append(all, id5.Address)...)
	heldShare(t, home5, key1)
	if out := cli(t, "network", "key", "--node", net.apiURL(0)); !strings.Contains(out, fmt.Sprintf("epoch %d, threshold 4 of 5 holders", key1.Epoch)) {
		t.Fatalf("network key:\n%s", out)
	}
	old1, err := node.LoadNetworkShare(net.home(1))
	if err != nil || old1 == nil || old1.Epoch != key1.Epoch {
		t.Fatalf("node1's share of epoch %d: %+v %v", key1.Epoch, old1, err)
	}

	// node1 dies; the other four (40 of 50) keep committing; the registrar votes it out.
	net.procs[1].kill()
	id1 := nodeIdentity(t, net.home(1))
	h := waitHealthy(t, net.procs[0], net.clients[0], 0)
	waitHealthy(t, net.procs[0], net.clients[0], h+2)
	cli(t, append([]string{"network", "propose", "--action", "remove", "--pub-key", id1.PubKey}, regFlags...)...)
	addr1 := strings.ToUpper(string(id1.Address))
	waitFor(t, 30*time.Second, "node1 out of the validator set", func() bool {
		vs := validatorSet(t, rpc0)
		_, in := vs[addr1]
		return !in && len(vs) == 4
	})
	h = waitHealthy(t, net.procs[0], net.clients[0], 0)
	waitHealthy(t, p5, c5, h+3) // still committing, and org5 follows
	if acc, _, err := net.clients[0].Account(context.Background(), id1.Address, false); err != nil || acc.Role != identity.RoleRetiredNode {
		t.Fatalf("node1's account after removal: %+v %v", acc, err)
	}
	// Without node1 the other four re-share again: node1's share (it was killed and could not
	// delete it) no longer belongs to the key, and the record reads through the new holders.
	key2 := waitReshared(t, net.clients[0], key1, all[0], all[2], all[3], id5.Address)
	if key2.Public.Check(old1) == nil {
		t.Fatal("the removed validator's share still belongs to the re-shared key")
	}
	for _, i := range []int{0, 2, 3} {
		heldShare(t, net.home(i), key2)
	}
	heldShare(t, home5, key2)
	got, err := people.agentVia(0, people.docB).Read(ctx, recordID)
	if err != nil || string(got.JSON) != replicatedResult {
		t.Fatalf("read after two re-sharings: %v", err)
	}

	members := cli(t, "network", "members", "--node", fmt.Sprintf("http://127.0.0.1:%d", ports.API))
	if !strings.Contains(members, "org5") || strings.Contains(members, string(id1.Address)) {
		t.Fatalf("members on org5's node:\n%s", members)
	}

	// node2's key is replaced as docs/OPERATIONS.md says: stop the node, take a new key from a
	// scratch home, vote the rotation, put the key file in place and start the node again.
	old2 := nodeIdentity(t, net.home(2))
	power2 := validatorSet(t, rpc0)[strings.ToUpper(string(old2.Address))]
	net.procs[2].stop(t)
	scratchPorts, err := node.FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(net.dir, "scratch")
	cli(t, "node", "join", "--home", scratch, "--genesis", filepath.Join(net.home(0), "config", "genesis.json"), "--peers", peers[0],
		"--p2p-port", fmt.Sprint(scratchPorts.P2P), "--rpc-port", fmt.Sprint(scratchPorts.RPC), "--api-port", fmt.Sprint(scratchPorts.API))
	new2 := nodeIdentity(t, scratch)
	cli(t, append([]string{"network", "propose", "--action", "rotate", "--pub-key", old2.PubKey, "--new-pub-key", new2.PubKey}, regFlags...)...)
	addrOld2, addrNew2 := strings.ToUpper(string(old2.Address)), strings.ToUpper(string(new2.Address))
	waitFor(t, 30*time.Second, "node2's new key in the validator set with its power", func() bool {
		vs := validatorSet(t, rpc0)
		_, oldIn := vs[addrOld2]
		return !oldIn && vs[addrNew2] == power2
	})
	key, err := os.ReadFile(filepath.Join(scratch, "config", "priv_validator_key.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(net.home(2), "config", "priv_validator_key.json"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	p2 := start(t, "node", "start", "--home", net.home(2))
	waitHealthy(t, p2, net.clients[2], 0)
	waitFor(t, 60*time.Second, "a commit signed by node2's new key", func() bool { return signedLatest(t, rpc0, addrNew2) })
	if acc, _, err := net.clients[0].Account(context.Background(), old2.Address, false); err != nil || acc.Role != identity.RoleRetiredNode {
		t.Fatalf("node2's old key account after rotation: %+v %v", acc, err)
	}
}
