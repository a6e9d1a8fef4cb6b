package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/notary"
	"github.com/medchain/medchain/notaryindex"
)

func digests256(prefix string, n int) ([][]byte, []byte) {
	var each [][]byte
	var all []byte
	for i := range n {
		d := sha256.Sum256([]byte(fmt.Sprintf("%s %d", prefix, i)))
		each, all = append(each, d[:]), append(all, d[:]...)
	}
	return each, all
}

// TestNotarizeSealsBlockRoot: two notarizations in one block (SHA-256 and SHA-512) become the
// leaves of one tree, in transaction order; its root is stored under the block's height, each
// digest's path leads to it, the pending leaves are gone, and a block without notarizations
// stores nothing. Replaying the blocks gives the same app hashes.
func TestNotarizeSealsBlockRoot(t *testing.T) {
	reg, doc, lab := newKey("registrar"), newKey("doctor"), newKey("lab")
	c := newChain(t, reg)
	c.must(register(doc, identity.RolePractitioner, "")(t))
	c.must(register(lab, identity.RoleOrganization, "lab")(t))
	d1, all1 := digests256("discharge letter", 3)
	big := sha512.Sum512([]byte("a DICOM study"))
	res := c.block(doc.sign(t, notary.TypeNotarize, notary.Notarize{Alg: notary.SHA256, Digests: all1}),
		lab.sign(t, notary.TypeNotarize, notary.Notarize{Alg: notary.SHA512, Digests: big[:]}))
	for i, r := range res {
		if r.Code != 0 {
			t.Fatalf("tx %d: %d %s", i, r.Code, r.Log)
		}
	}
	if first := eventAttr(res[1], "notary.notarized", "first"); first != "3" {
		t.Fatalf("the second tx's leaves start at %q, want 3", first)
	}
	h := int64(c.height)
	leaf := func(alg string, d []byte) *app.NotaryLeaf {
		t.Helper()
		data, _ := json.Marshal(app.NotaryLeafQuery{Height: h, Alg: alg, Digest: d})
		var l app.NotaryLeaf
		if err := json.Unmarshal(query(t, c, app.PathNotaryLeaf, data), &l); err != nil {
			t.Fatal(err)
		}
		return &l
	}
	for i, d := range d1 {
		l := leaf(notary.SHA256, d)
		lf, _ := notary.Leaf(notary.SHA256, d)
		p := merkle.Proof{Total: l.Total, Index: l.Index, LeafHash: l.LeafHash, Aunts: l.Aunts}
		if l.Index != int64(i) || l.Total != 4 || l.Block.Count != 4 || p.Verify(l.Block.Root, lf) != nil {
			t.Fatalf("leaf %d: %+v", i, l)
		}
	}
	l := leaf(notary.SHA512, big[:])
	lf, _ := notary.Leaf(notary.SHA512, big[:])
	if p := (merkle.Proof{Total: l.Total, Index: l.Index, LeafHash: l.LeafHash, Aunts: l.Aunts}); l.Index != 3 || p.Verify(l.Block.Root, lf) != nil {
		t.Fatalf("the SHA-512 leaf: %+v", l)
	}
	// A digest notarized elsewhere, or under the other algorithm, is not in this block.
	for _, q := range []app.NotaryLeafQuery{{Height: h, Alg: notary.SHA512, Digest: bytes.Repeat(d1[0], 2)}, {Height: h - 1, Alg: notary.SHA256, Digest: d1[0]}} {
		data, _ := json.Marshal(q)
		if resp, _ := c.app.Query(context.Background(), abciQuery(app.PathNotaryLeaf, data)); resp.Code != uint32(codes.NotFound) {
			t.Fatalf("%+v: code %d", q, resp.Code)
		}
	}
	c.block() // nothing notarized: no root
	data, _ := json.Marshal(app.NotaryLeafQuery{Height: int64(c.height), Alg: notary.SHA256, Digest: d1[0]})
	if resp, _ := c.app.Query(context.Background(), abciQuery(app.PathNotaryLeaf, data)); resp.Code != uint32(codes.NotFound) {
		t.Fatalf("an empty block: code %d", resp.Code)
	}
	// The next block's tree starts afresh; a digest notarized again keeps its first height in
	// the index (the TSA's and a verifier's way from a document to its block).
	first := h
	d2, all2 := digests256("lab report", 2)
	c.must(doc.sign(t, notary.TypeNotarize, notary.Notarize{Alg: notary.SHA256, Digests: append(all2, d1[0]...)}))
	h = int64(c.height)
	if l := leaf(notary.SHA256, d2[1]); l.Index != 1 || l.Total != 3 {
		t.Fatalf("the next block's tree: %+v", l)
	}
	// The node's index (notaryindex) learns each block's leaves from the commit hook, or from the
	// committed state after a restart (CatchUp); either way a digest maps to its first block.
	ix, err := notaryindex.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if err := ix.CatchUp(c.app); err != nil {
		t.Fatal(err)
	}
	firstOf := func(alg string, d []byte) int64 {
		t.Helper()
		l, err := notary.Leaf(alg, d)
		if err != nil {
			t.Fatal(err)
		}
		h, ok, err := ix.First(l)
		if err != nil || !ok {
			return 0
		}
		return h
	}
	if got := firstOf(notary.SHA256, d1[0]); got != first {
		t.Fatalf("a digest notarized at %d and again at %d: the index says %d", first, h, got)
	}
	if firstOf(notary.SHA256, d2[0]) != h || firstOf(notary.SHA512, big[:]) != first || firstOf(notary.SHA256, big[:32]) != 0 {
		t.Fatal("the digest index")
	}
	if last, _ := ix.Last(); last != h {
		t.Fatalf("the index's last height %d, want %d", last, h)
	}
	var hooked []int64
	c.app.OnNotarized(func(height int64, leaves [][]byte) {
		hooked = append(hooked, height)
		if err := ix.Add(height, leaves); err != nil {
			t.Error(err)
		}
	})
	d3, all3 := digests256("consent form", 1)
	c.must(doc.sign(t, notary.TypeNotarize, notary.Notarize{Alg: notary.SHA256, Digests: all3}))
	c.block()
	if len(hooked) != 1 || hooked[0] != int64(c.height-1) || firstOf(notary.SHA256, d3[0]) != int64(c.height-1) {
		t.Fatalf("the commit hook: %v", hooked)
	}
	c.assertReplays()
}

// TestAttackNotarize: malformed notarizations are refused at admission with a clear code: an
// unknown algorithm, a digest of the wrong length, none, too many (and an oversized
// transaction); an unregistered signer cannot notarize.
func TestAttackNotarize(t *testing.T) {
	reg, doc, stranger := newKey("registrar"), newKey("doctor"), newKey("stranger")
	c := newChain(t, reg)
	c.must(register(doc, identity.RolePractitioner, "")(t))
	_, ok := digests256("x", 2)
	_, tooMany := digests256("y", notary.MaxDigests+1)
	for name, m := range map[string]notary.Notarize{
		"md5":           {Alg: "md5", Digests: ok},
		"short digest":  {Alg: notary.SHA256, Digests: ok[:40]},
		"sha512 length": {Alg: notary.SHA512, Digests: ok[:32]},
		"none":          {Alg: notary.SHA256},
		"too many":      {Alg: notary.SHA256, Digests: tooMany},
	} {
		raw := doc.sign(t, notary.TypeNotarize, m)
		resp, err := c.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw})
		if err != nil || resp.Code == 0 {
			t.Errorf("%s: admitted (%v)", name, err)
		}
	}
	raw := stranger.sign(t, notary.TypeNotarize, notary.Notarize{Alg: notary.SHA256, Digests: ok})
	if resp, _ := c.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw}); resp.Code != uint32(codes.UnknownSigner) {
		t.Fatalf("an unregistered signer: code %d", resp.Code)
	}
}

// eventAttr is the value of key in the first event of type typ of a tx's result.
func eventAttr(r *abci.ExecTxResult, typ, key string) string {
	for _, e := range r.Events {
		if e.Type != typ {
			continue
		}
		for _, a := range e.Attributes {
			if a.Key == key {
				return a.Value
			}
		}
	}
	return ""
}

// BenchmarkNotarize measures documents notarized per second by the state machine of one node:
// blocks of 10 transactions of 1,000 SHA-256 digests each, every transaction admitted by
// CheckTx (decoding, Ed25519, nonce, precheck), then the block finalized (the leaves stored,
// the block's tree built and its root stored) and committed.
//
//	go test ./app -run '^$' -bench Notarize -benchtime 20x -count 3
func BenchmarkNotarize(b *testing.B) {
	const perTx, perBlock = notary.MaxDigests, 10
	reg := newKey("registrar")
	c := newChain(b, reg)
	var signers []*key
	for i := range perBlock {
		k := newKey(fmt.Sprint("notarizer", i))
		c.must(register(k, identity.RolePractitioner, "")(b))
		signers = append(signers, k)
	}
	n, docs := 0, 0
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		txs := make([][]byte, perBlock)
		for i := range txs {
			_, all := digests256(fmt.Sprint("bench ", n), perTx)
			n++
			txs[i] = signers[i].sign(b, notary.TypeNotarize, notary.Notarize{Alg: notary.SHA256, Digests: all})
		}
		b.StartTimer()
		for _, raw := range txs {
			if resp, err := c.app.CheckTx(ctx, &abci.RequestCheckTx{Tx: raw}); err != nil || resp.Code != 0 {
				b.Fatalf("CheckTx: %v %s", err, resp.Log)
			}
		}
		for i, r := range c.block(txs...) {
			if r.Code != 0 {
				b.Fatalf("tx %d: %s", i, r.Log)
			}
		}
		docs += perTx * perBlock
	}
	b.ReportMetric(float64(docs)/b.Elapsed().Seconds(), "docs/s")
}
