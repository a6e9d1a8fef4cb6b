package client_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/tx"
)

// startDevNode starts a real dev node (CometBFT + app + API) on free loopback ports, as
// node_test's startDev does (another package's test helpers cannot be imported).
func startDevNode(t testing.TB) (*node.Node, *client.Client) {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	home := t.TempDir()
	if _, err := node.EnsureDev(home, node.Ports{P2P: ports[0], RPC: ports[1], API: ports[2]}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(home, node.Options{Log: nil})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	return n, client.New(n.APIAddr)
}

func TestBlocksAndValidatorsEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	n, c := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := "http://" + n.APIAddr

	// A new practitioner registers itself: one committed tx of a known type.
	doc, err := keyring.Generate("newdoc")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := tx.Sign(doc.Signing, n.ChainID, doc.Address, 0, identity.TypeRegister,
		identity.Register{Role: identity.RolePractitioner, Name: "Dr. Blocks", EncryptionKey: doc.Encryption.PublicKey().Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Submit(ctx, raw, "commit")
	if err != nil || res.Code != 0 || res.Height == 0 {
		t.Fatalf("register: %+v %v", res, err)
	}

	// The block that holds it is listed (once the app has applied it), with the tx's hash, type
	// and code.
	var blocks []api.BlockSummary
	var found *api.TxSummary
	for deadline := time.Now().Add(15 * time.Second); found == nil; {
		if blocks, err = c.Blocks(ctx, api.MaxBlocksLimit); err != nil {
			t.Fatalf("blocks: %v", err)
		}
		for _, b := range blocks {
			for i, s := range b.Txs {
				if b.Height == res.Height && s.Hash == res.Hash {
					found = &b.Txs[i]
				}
			}
		}
		if found == nil {
			if time.Now().After(deadline) {
				t.Fatalf("tx %s at height %d not listed in %+v", res.Hash, res.Height, blocks)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if found.Type != identity.TypeRegister || found.Code != 0 {
		t.Fatalf("listed tx: %+v", found)
	}
	// The listed hash is one GET /v1/txs/{hash} finds.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, err := c.Tx(ctx, found.Hash)
		if err == nil {
			if got.Height != res.Height {
				t.Fatalf("tx lookup: %+v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tx %s not found: %v", found.Hash, err)
		}
	}
	// Newest first, consecutive heights, each with its identity.
	if len(blocks) == 0 || len(blocks) > api.MaxBlocksLimit {
		t.Fatalf("%d blocks", len(blocks))
	}
	for i, b := range blocks {
		if b.Hash == "" || b.Proposer == "" || b.Time.IsZero() || b.Txs == nil {
			t.Fatalf("block %+v", b)
		}
		if i > 0 && b.Height != blocks[i-1].Height-1 {
			t.Fatalf("heights out of order: %d after %d", b.Height, blocks[i-1].Height)
		}
	}
	if one, err := c.Blocks(ctx, 1); err != nil || len(one) != 1 || one[0].Height < blocks[0].Height {
		t.Fatalf("limit=1: %+v %v", one, err)
	}

	// The JSON carries no more than hash, type and code of a tx: no signer, key, payload.
	resp, err := http.Get(base + "/v1/blocks")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/blocks: %d %s", resp.StatusCode, body)
	}
	var generic []map[string]json.RawMessage
	if err := json.Unmarshal(body, &generic); err != nil || len(generic) == 0 || len(generic) > api.DefaultBlocksLimit {
		t.Fatalf("default limit: %d blocks, %v", len(generic), err)
	}
	for _, b := range generic {
		if keys := slices.Sorted(maps.Keys(b)); !slices.Equal(keys, []string{"hash", "height", "proposer", "time", "txs"}) {
			t.Fatalf("block fields %v", keys)
		}
		var txs []map[string]json.RawMessage
		if err := json.Unmarshal(b["txs"], &txs); err != nil {
			t.Fatal(err)
		}
		for _, s := range txs {
			if keys := slices.Sorted(maps.Keys(s)); !slices.Equal(keys, []string{"code", "hash", "type"}) {
				t.Fatalf("tx fields %v", keys)
			}
		}
	}
	for _, leak := range []string{string(doc.Address), "Dr. Blocks", "signer", "msg", "pub_key", "payload"} {
		if strings.Contains(string(body), leak) {
			t.Fatalf("GET /v1/blocks tells %q: %s", leak, body)
		}
	}

	// A bad limit is refused with 400 and the invalid code.
	for _, q := range []string{"limit=0", "limit=21", "limit=abc", "limit=-1"} {
		resp, err := http.Get(base + "/v1/blocks?" + q)
		if err != nil {
			t.Fatal(err)
		}
		var e api.Error
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || err != nil || e.Error.Code != "invalid" || e.Error.Message == "" {
			t.Fatalf("%s: %d %+v %v", q, resp.StatusCode, e, err)
		}
	}
	if _, err := c.Blocks(ctx, 21); err == nil {
		t.Fatal("client: limit 21 accepted")
	} else if ce, ok := err.(*client.Error); !ok || ce.Status != http.StatusBadRequest {
		t.Fatalf("client: limit 21: %v", err)
	}

	// The dev node is the one validator, with power, and its key.
	vals, err := c.Validators(ctx)
	if err != nil || len(vals) != 1 {
		t.Fatalf("validators: %+v %v", vals, err)
	}
	v := vals[0]
	key, err := base64.StdEncoding.DecodeString(v.PubKey)
	if v.Power <= 0 || len(key) != 32 || len(v.Address) != 40 {
		t.Fatalf("validator %+v (key %d bytes, %v)", v, len(key), err)
	}
	st, err := c.Status(ctx)
	if err != nil || !strings.EqualFold(st.Validator, v.Address) || st.VotingPower != v.Power {
		t.Fatalf("status %+v, validator %+v, %v", st, v, err)
	}
	if blocks[0].Proposer != v.Address {
		t.Fatalf("proposer %s, validator %s", blocks[0].Proposer, v.Address)
	}
}
