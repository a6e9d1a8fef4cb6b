package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	cmted "github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/notary"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/notaryproof"
)

// notarized starts a node, notarizes docs as a new practitioner and returns each one's proof.
func notarized(t testing.TB, docs ...string) (*client.Client, string, [][]byte, []*notaryproof.Proof) {
	t.Helper()
	n, c := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	k, err := keyring.Generate("notary-user")
	if err != nil {
		t.Fatal(err)
	}
	s := &client.Signer{C: c, ChainID: n.ChainID, Key: k}
	if _, err := s.Send(ctx, identity.TypeRegister, identity.Register{Role: identity.RolePractitioner, Name: "Dr. Notary",
		EncryptionKey: k.Encryption.PublicKey().Bytes()}); err != nil {
		t.Fatal(err)
	}
	var digests [][]byte
	var all []byte
	for _, d := range docs {
		h := sha256.Sum256([]byte(d))
		digests, all = append(digests, h[:]), append(all, h[:]...)
	}
	res, err := s.Send(ctx, notary.TypeNotarize, notary.Notarize{Alg: notary.SHA256, Digests: all})
	if err != nil {
		t.Fatal(err)
	}
	var proofs []*notaryproof.Proof
	for _, d := range digests {
		p, err := c.ProveNotarized(ctx, n.ChainID, res.Height, notary.SHA256, d)
		if err != nil {
			t.Fatal(err)
		}
		// As a file: pretty-printed, read back.
		raw, _ := json.MarshalIndent(p, "", "  ")
		var back notaryproof.Proof
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		proofs = append(proofs, &back)
	}
	return c, n.Home, digests, proofs
}

// TestNotaryProofVerifiesOffline: a notarized document's proof verifies against the genesis
// validators with no node, and fails when one byte of anything changes: the document, the
// path, the root, the proven state value, the header, or the trusted validators.
func TestNotaryProofVerifiesOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	_, home, digests, proofs := notarized(t, "discharge letter", "lab report", "dataset")
	trusted, chainID, err := notaryproof.GenesisValidators(home)
	if err != nil || chainID != proofs[0].ChainID {
		t.Fatalf("genesis validators: %v (chain %q)", err, chainID)
	}
	for i, p := range proofs {
		v, err := notaryproof.Verify(p, digests[i], trusted)
		if err != nil {
			t.Fatalf("proof %d: %v", i, err)
		}
		if v.Height != p.Block.Height || v.Time.IsZero() || v.Validators != 1 {
			t.Fatalf("proof %d verified as %+v", i, v)
		}
	}
	flip := func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 1; return c }
	p := proofs[1]
	for name, c := range map[string]struct {
		proof  func() *notaryproof.Proof
		digest []byte
	}{
		"a changed byte in the document": {func() *notaryproof.Proof { return p }, flip(digests[1])},
		"another document's proof":       {func() *notaryproof.Proof { return proofs[0] }, digests[1]},
		"a changed path": {func() *notaryproof.Proof {
			q := *p
			q.Aunts = [][]byte{flip(p.Aunts[0]), p.Aunts[1]}
			return &q
		}, digests[1]},
		"a changed root": {func() *notaryproof.Proof { q := *p; q.Block.Root = flip(p.Block.Root); return &q }, digests[1]},
		"a changed state value": {func() *notaryproof.Proof {
			q := *p
			q.State.Value = bytes.Replace(p.State.Value, []byte(`"count":3`), []byte(`"count":4`), 1)
			return &q
		}, digests[1]},
		"a changed header": {func() *notaryproof.Proof { q := *p; q.LightBlock = flip(p.LightBlock); return &q }, digests[1]},
		"the wrong height": {func() *notaryproof.Proof { q := *p; q.Block.Height++; return &q }, digests[1]},
	} {
		if _, err := notaryproof.Verify(c.proof(), c.digest, trusted); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	// Another network's validators are not trusted with this proof.
	pub, _, _ := ed25519.GenerateKey(nil)
	other := types.NewValidatorSet([]*types.Validator{types.NewValidator(cmted.PubKey(pub), 10)})
	if _, err := notaryproof.Verify(p, digests[1], other); !errors.Is(err, notaryproof.ErrUntrustedValidators) {
		t.Fatalf("another validator set: %v", err)
	}
}

// BenchmarkNotaryProofVerify measures checking one proof offline (path, state proof, header
// signatures of the dev network's one validator):
//
//	go test ./client -run '^$' -bench NotaryProofVerify
func BenchmarkNotaryProofVerify(b *testing.B) {
	docs := make([]string, 1000) // a block's tree of 1,000 leaves: a path of 10 hashes
	for i := range docs {
		docs[i] = fmt.Sprintf("document %d", i)
	}
	_, home, digests, proofs := notarized(b, docs...)
	trusted, _, err := notaryproof.GenesisValidators(home)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := notaryproof.Verify(proofs[2], digests[2], trusted); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNotarizeThroughNode measures documents notarized per second by a real single-node
// network (mempool, consensus, block execution, commit): 32 accounts each send transactions of
// 1,000 SHA-256 digests back to back, each waiting for its commit.
//
//	go test ./client -run '^$' -bench NotarizeThroughNode -benchtime 320x
func BenchmarkNotarizeThroughNode(b *testing.B) {
	const senders = 32
	n, c := startDevNode(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var signers []*client.Signer
	for i := range senders {
		k, err := keyring.Generate(fmt.Sprint("notarizer", i))
		if err != nil {
			b.Fatal(err)
		}
		s := &client.Signer{C: c, ChainID: n.ChainID, Key: k}
		if _, err := s.Send(ctx, identity.TypeRegister, identity.Register{Role: identity.RolePractitioner, Name: fmt.Sprint("Notarizer ", i),
			EncryptionKey: k.Encryption.PublicKey().Bytes()}); err != nil {
			b.Fatal(err)
		}
		signers = append(signers, s)
	}
	work := make(chan int, b.N)
	b.ResetTimer()
	for i := range b.N {
		work <- i
	}
	close(work)
	errs := make(chan error, senders)
	for _, s := range signers {
		go func() {
			for i := range work {
				all := make([]byte, 0, notary.MaxDigests*sha256.Size)
				for j := range notary.MaxDigests {
					d := sha256.Sum256([]byte(fmt.Sprintf("document %d/%d", i, j)))
					all = append(all, d[:]...)
				}
				if _, err := s.Send(ctx, notary.TypeNotarize, notary.Notarize{Alg: notary.SHA256, Digests: all}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range senders {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*notary.MaxDigests)/b.Elapsed().Seconds(), "docs/s")
}
