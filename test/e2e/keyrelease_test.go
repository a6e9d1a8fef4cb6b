package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/seal"
)

// TestKeyReleaseWithValidatorsDown: four validator processes hold the network key (t = 3). A
// validator with a wrong share answers shares that fail their proof, and a grantee still reads
// through the three honest ones; with one validator down, reads within the grantee's session
// work; with two down, they fail and the error names the unreachable holders.
func TestKeyReleaseWithValidatorsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const chainID = "e2e-keyrelease"
	// Node 1 starts with a share of another key under its own index: a lying holder.
	var rightShare []byte
	liar := 1
	net := startTestnetWith(t, 4, chainID, func(home string) {
		if !strings.HasSuffix(home, "node1") {
			return
		}
		var err error
		if rightShare, err = os.ReadFile(node.NetworkShareFile(home)); err != nil {
			t.Fatal(err)
		}
		_, other, err := netkey.Deal(4)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(other[liar])
		if err := os.WriteFile(node.NetworkShareFile(home), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	people := registerPeople(t, ctx, net, chainID)
	id := people.labResultForDocB(t, ctx, 0)
	docB := people.agentVia(0, people.docB)
	got, err := docB.Read(ctx, id)
	if err != nil || string(got.JSON) != replicatedResult {
		t.Fatalf("read with a lying holder: %v", err)
	}

	// The liar's share, asked for directly, fails its proof against its public share.
	ev, err := docB.Access(ctx, records.Access{Patient: people.patient.Address, Record: id, Purpose: "TREAT"})
	if err != nil || ev.Outcome != records.Granted {
		t.Fatalf("access: %+v %v", ev, err)
	}
	// The event committed through node 0; the liar decides on its own committed state, which
	// may trail by a block under load.
	waitFor(t, 30*time.Second, "the liar's state reaching the access event", func() bool {
		st, err := net.clients[liar].Status(ctx)
		return err == nil && st.AppHeight >= ev.Height
	})
	req := api.ReleaseRequest{Patient: people.patient.Address, Access: ev.ID, Record: id, Version: 1}
	body, _ := json.Marshal(req)
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, net.apiURL(liar)+api.ReleasePath, bytes.NewReader(body))
	reqsig.Sign(hr, chainID, people.docB.Address, people.docB.Signing, body, time.Now())
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	var out api.ReleaseResponse
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the liar's answer: %d %v", resp.StatusCode, err)
	}
	share, err := seal.OpenBox(people.docB.Encryption, api.ReleaseInfo(chainID, &req, people.docB.Address, out.Index), out.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	p, err := net.clients[0].State(ctx, network.KeyStateKey(), false)
	if err != nil {
		t.Fatal(err)
	}
	var key network.Key
	if err := json.Unmarshal(p.Value, &key); err != nil {
		t.Fatal(err)
	}
	anchor, err := net.clients[0].As(chainID, people.docB.Address, people.docB.Signing).Record(ctx, id) // docB's grant covers it
	if err != nil {
		t.Fatal(err)
	}
	w, err := netkey.ParseWrapped(anchor.Network, records.SealContext(chainID, id, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := netkey.VerifyShare(&key.Public, w, &netkey.DecShare{Index: out.Index, Share: share}); err == nil {
		t.Fatal("a share of another key passed its proof")
	}

	// Node 1 gets its real share back; then one validator down: the session still reads.
	net.procs[liar].kill()
	if err := os.WriteFile(node.NetworkShareFile(net.home(liar)), rightShare, 0o600); err != nil {
		t.Fatal(err)
	}
	net.procs[liar] = start(t, "node", "start", "--home", net.home(liar))
	waitHealthy(t, net.procs[liar], net.clients[liar], 1)
	net.procs[3].kill()
	if got, err := docB.Read(ctx, id); err != nil || string(got.JSON) != replicatedResult {
		t.Fatalf("read with one validator down: %v", err)
	}

	// Two down: the chain halts and only two holders answer; the error says who is missing.
	net.procs[2].kill()
	_, err = docB.Read(ctx, id)
	var re *agent.ReleaseError
	if !errors.As(err, &re) || re.Have != 2 || re.Need != 3 || len(re.Refusals) != 2 || errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("read with two validators down: %v", err)
	}
	for _, r := range re.Refusals {
		if (r.Holder.Index != 3 && r.Holder.Index != 4) || !strings.HasPrefix(r.Reason, "unreachable") {
			t.Fatalf("refusal %+v in %v", r, err)
		}
	}
}

// TestGeneratedNetworkKey: four validator processes whose genesis holds no network key generate
// one over the ledger (distributed key generation: nobody ever holds the whole key), each keeps
// its share in its home, and records written for that key read through the release path.
func TestGeneratedNetworkKey(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const chainID = "e2e-dkg"
	net := startTestnetWith(t, 4, chainID, func(home string) {
		if _, err := os.Stat(node.NetworkShareFile(home)); !os.IsNotExist(err) {
			t.Fatalf("testnet --generate-key dealt a share into %s (%v)", home, err)
		}
	}, "--generate-key")
	var key *network.Key
	waitFor(t, 2*time.Minute, "a generated network key", func() bool {
		p, err := net.clients[0].State(context.Background(), network.KeyStateKey(), false)
		if err != nil || len(p.Value) == 0 {
			return false
		}
		key = new(network.Key)
		return json.Unmarshal(p.Value, key) == nil && len(key.Holders) == 4
	})
	if key.Epoch < 1 || key.Threshold != 3 {
		t.Fatalf("generated key: epoch %d threshold %d", key.Epoch, key.Threshold)
	}
	for i := range 4 {
		heldShare(t, net.home(i), key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	people := registerPeople(t, ctx, net, chainID)
	id := people.labResultForDocB(t, ctx, 1)
	got, err := people.agentVia(2, people.docB).Read(ctx, id)
	if err != nil || string(got.JSON) != replicatedResult {
		t.Fatalf("read under a generated key: %v", err)
	}
}
