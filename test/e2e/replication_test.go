package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/tx"
)

// testnet is n validator processes on loopback with their API clients.
type testnet struct {
	dir     string
	procs   []*proc
	clients []*client.Client
	base    int // node i listens on base+10i (P2P), +1 (RPC), +2 (API)
}

func startTestnet(t *testing.T, n int, chainID string) *testnet {
	t.Helper()
	return startTestnetWith(t, n, chainID, nil)
}

// startTestnetWith is startTestnet with prepare called on each home before its node starts and
// more arguments for `medchain testnet`.
func startTestnetWith(t *testing.T, n int, chainID string, prepare func(home string), testnetArgs ...string) *testnet {
	t.Helper()
	net := &testnet{dir: t.TempDir()}
	base := freeBase(t, n)
	net.base = base
	gen := exec.Command(binary, append([]string{"testnet", "--validators", fmt.Sprint(n), "--out", net.dir, "--chain-id", chainID,
		"--base-port", fmt.Sprint(base)}, testnetArgs...)...)
	gen.Env = append(os.Environ(), "MEDCHAIN_PASSPHRASE=")
	if b, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("testnet: %v\n%s", err, b)
	}
	for i := 0; i < n; i++ {
		if prepare != nil {
			prepare(net.home(i))
		}
		net.procs = append(net.procs, start(t, "node", "start", "--home", net.home(i)))
		net.clients = append(net.clients, client.New(fmt.Sprintf("127.0.0.1:%d", base+10*i+2)))
	}
	for i := range net.procs {
		waitHealthy(t, net.procs[i], net.clients[i], 1)
	}
	return net
}

func (n *testnet) home(i int) string { return filepath.Join(n.dir, fmt.Sprintf("node%d", i)) }

// blobOn reports whether node i holds the ciphertext h on disk.
func (n *testnet) blobOn(i int, h []byte) bool {
	s := fmt.Sprintf("%x", h)
	_, err := os.Stat(filepath.Join(node.BlobDir(n.home(i)), s[:2], s))
	return err == nil
}

// people are a patient and two attested practitioners registered on a testnet, and agents for
// them through any node.
type people struct {
	patient, docA, docB *keyring.Key
	agentVia            func(i int, k *keyring.Key) *agent.Agent
}

// labResultForDocB has the patient, through node via, grant docB laboratory records for
// treatment and write one lab result; it returns the record's id.
func (p *people) labResultForDocB(t *testing.T, ctx context.Context, via int) string {
	t.Helper()
	patient := p.agentVia(via, p.patient)
	if _, err := patient.Grant(ctx, consent.GrantMsg{Grantee: p.docB.Address, Categories: []string{"laboratory"},
		Purposes: []string{"TREAT"}, Expiry: time.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	stored, err := patient.Add(ctx, []byte(replicatedResult))
	if err != nil {
		t.Fatal(err)
	}
	return stored.Anchor.ID
}

func registerPeople(t *testing.T, ctx context.Context, net *testnet, chainID string) *people {
	t.Helper()
	kr, err := keyring.OpenFile(node.KeyringDir(net.home(0)))
	if err != nil {
		t.Fatal(err)
	}
	regKey, err := kr.Get("registrar", "")
	if err != nil {
		t.Fatal(err)
	}
	pat, _ := keyring.Generate("patient")
	docA, _ := keyring.Generate("docA")
	docB, _ := keyring.Generate("docB")
	signer := func(i int, k *keyring.Key) *client.Signer {
		s, err := client.NewSigner(ctx, net.clients[i], k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	reg := signer(0, regKey)
	for _, a := range []struct {
		k    *keyring.Key
		role identity.Role
	}{{pat, identity.RolePatient}, {docA, identity.RolePractitioner}, {docB, identity.RolePractitioner}} {
		raw, _ := tx.Sign(a.k.Signing, chainID, a.k.Address, 0, identity.TypeRegister, identity.Register{
			Role: a.role, Name: identity.LedgerName(a.role, "E2E "+string(a.role)), EncryptionKey: a.k.Encryption.PublicKey().Bytes()})
		if res, err := net.clients[0].Submit(ctx, raw, "commit"); err != nil || res.Code != 0 {
			t.Fatalf("register: %+v %v", res, err)
		}
		if a.role == identity.RolePractitioner {
			if _, err := reg.Send(ctx, identity.TypeAttest, identity.Attest{Subject: a.k.Address, Licence: "MD", Jurisdiction: "NL",
				ExpiresAt: time.Now().Add(24 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return &people{patient: pat, docA: docA, docB: docB, agentVia: func(i int, k *keyring.Key) *agent.Agent {
		return agent.New(signer(i, k), agent.Config{Patients: map[string]tx.Address{"example": pat.Address}})
	}}
}

const replicatedResult = `{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"text":"Hemoglobin"},"subject":{"reference":"Patient/example"},"valueQuantity":{"value":13.2,"unit":"g/dL"}}`

// TestReplicatedRecordAcrossNodes is the records scenario across organizations: a doctor writes
// through node 0 (and hears of success only once a second node holds the ciphertext), the
// patient grants through node 1, another doctor reads through node 2; node 0 is killed and its
// blob folder deleted, and the record is still read through node 3, which, after losing its own
// copy too, fetches it from a peer on demand.
func TestReplicatedRecordAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const chainID = "e2e-replicas"
	net := startTestnet(t, 4, chainID)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	people := registerPeople(t, ctx, net, chainID)
	pat, docA, docB, agentVia := people.patient, people.docA, people.docB, people.agentVia
	patient := agentVia(1, pat)
	granted, err := patient.Grant(ctx, consent.GrantMsg{Grantee: docA.Address, Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: time.Now().Add(24 * time.Hour), Write: true})
	if err != nil {
		t.Fatal(err)
	}
	// The grant (and the patient's tag key before it) committed through node 1; doctor A writes
	// through node 0, which may be a block behind: it waits to have applied that block.
	for st, err := net.clients[0].Status(ctx); err != nil || st.AppHeight < granted.Height; st, err = net.clients[0].Status(ctx) {
		if ctx.Err() != nil {
			t.Fatalf("node 0 never applied block %d: %v", granted.Height, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Doctor A writes through node 0: success means a second node holds the ciphertext already.
	stored, err := agentVia(0, docA).Add(ctx, []byte(replicatedResult))
	if err != nil {
		t.Fatal(err)
	}
	h := stored.Anchor.CiphertextHash
	held := 0
	for i := range 4 {
		if net.blobOn(i, h) {
			held++
		}
	}
	if held < 2 {
		t.Fatalf("the write succeeded with the ciphertext on %d node(s)", held)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 1; i < 4; i++ {
		for !net.blobOn(i, h) {
			if time.Now().After(deadline) {
				t.Fatalf("node%d did not replicate the ciphertext\n%s", i, net.procs[i].output())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The patient grants doctor B through node 1; B reads through node 2.
	if _, err := patient.Grant(ctx, consent.GrantMsg{Grantee: docB.Address, Categories: []string{"laboratory"},
		Purposes: []string{"TREAT"}, Expiry: time.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, err := agentVia(2, docB).Read(ctx, stored.Anchor.ID)
	if err != nil || string(got.JSON) != replicatedResult {
		t.Fatalf("read through node2: %v", err)
	}

	net.procs[0].kill()
	if err := os.RemoveAll(node.BlobDir(net.home(0))); err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf("%x", h)
	if err := os.Remove(filepath.Join(node.BlobDir(net.home(3)), s[:2], s)); err != nil {
		t.Fatal(err)
	}
	got, err = agentVia(3, docB).Read(ctx, stored.Anchor.ID)
	if err != nil || string(got.JSON) != replicatedResult {
		t.Fatalf("read through node3 with node0 gone: %v", err)
	}
	if !net.blobOn(3, h) {
		t.Fatal("node3 served the record without storing the fetched ciphertext")
	}
	for i := 1; i < 4; i++ {
		net.procs[i].stop(t)
	}
}
