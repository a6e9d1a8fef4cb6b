package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/tx"
)

// world is a real in-process dev node with signers for its demo accounts and extra ones.
type world struct {
	t     testing.TB
	ctx   context.Context
	node  *node.Node
	c     *client.Client
	home  string
	keys  map[string]*client.Signer
	trust *client.Trust // the home's light client: world agents verify what they rely on
}

func startWorld(t testing.TB) *world {
	t.Helper()
	return startWorldWith(t, nil)
}

// startWorldWith is startWorld with a chance to change the dev home before the node starts.
func startWorldWith(t testing.TB, prepare func(home string)) *world {
	t.Helper()
	return startWorldLogged(t, prepare, slog.New(slog.DiscardHandler))
}

// startWorldLogged is startWorldWith with the node logging to log.
func startWorldLogged(t testing.TB, prepare func(home string), log *slog.Logger) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real node")
	}
	home := t.TempDir()
	ports, err := node.FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.EnsureDev(home, ports); err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(home)
	}
	n, err := node.Start(home, node.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	trust, err := client.NewTrust(home, n.APIAddr, n.ChainID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trust.Close() })
	w := &world{t: t, ctx: ctx, node: n, c: client.New(n.APIAddr), home: home, keys: map[string]*client.Signer{}, trust: trust}
	if err := w.c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.OpenFile(node.KeyringDir(home))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"registrar", "hospital", "doctor", "patient"} {
		k, err := kr.Get(name, "")
		if err != nil {
			t.Fatal(err)
		}
		w.signer(name, k)
	}
	return w
}

// insurer loads the dev home's demo insurer as one of the world's signers and returns its key.
func (w *world) insurer() *keyring.Key {
	w.t.Helper()
	kr, err := keyring.OpenFile(node.KeyringDir(w.home))
	if err != nil {
		w.t.Fatal(err)
	}
	k, err := kr.Get("insurer", "")
	if err != nil {
		w.t.Fatal(err)
	}
	w.signer("insurer", k)
	return k
}

func (w *world) signer(name string, k *keyring.Key) *client.Signer {
	w.t.Helper()
	s, err := client.NewSigner(w.ctx, w.c, k)
	if err != nil {
		w.t.Fatal(err)
	}
	w.keys[name] = s
	return s
}

func (w *world) send(name, typ string, msg any) {
	w.t.Helper()
	if _, err := w.keys[name].Send(w.ctx, typ, msg); err != nil {
		w.t.Fatalf("%s %s: %v", name, typ, err)
	}
}

// account registers a new attested account.
func (w *world) account(name string, role identity.Role, kind string, scopes ...string) *client.Signer {
	w.t.Helper()
	k, err := keyring.Generate(name)
	if err != nil {
		w.t.Fatal(err)
	}
	s := w.signer(name, k)
	w.send(name, identity.TypeRegister, identity.Register{Role: role, OrgKind: kind, Name: identity.LedgerName(role, name), EncryptionKey: k.Encryption.PublicKey().Bytes()})
	w.send("registrar", identity.TypeAttest, identity.Attest{Subject: k.Address, Licence: "L-" + name, Jurisdiction: "NL", Scopes: scopes, ExpiresAt: time.Now().AddDate(1, 0, 0)})
	return s
}

func (w *world) agent(name string, purpose string) *agent.Agent {
	patient := w.keys["patient"].Address()
	return agent.New(w.keys[name], agent.Config{Patients: map[string]tx.Address{"example": patient, "infant": patient}, Purpose: purpose, Trust: w.trust})
}

// tag is the demo patient's tag of category, under the tag key its agent reads.
// tag is the patient's tag of category, the patient's tag key drawn first if need be.
func (w *world) tag(category string) string {
	w.t.Helper()
	key, err := w.agent("patient", "TREAT").EnsureTagKey(w.ctx, w.keys["patient"].Address())
	if err != nil {
		w.t.Fatalf("the patient's tag key: %v", err)
	}
	return consent.CategoryTag(key, category)
}

func (w *world) later(hours int) time.Time { return time.Now().Add(time.Duration(hours) * time.Hour) }

func clientFilter(requester tx.Address) client.AuditFilter {
	return client.AuditFilter{Requester: requester}
}

func example(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "fhir-examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestRecordsEndToEnd walks the scenario on a real node: a lab writes a result, a
// granted practitioner reads it, another is denied and audited, revocation, expiry and a wrong
// purpose fail, break-glass works through the emergency organization's agent and is reviewed,
// and erasure makes the record unreadable and removes its ciphertext from disk.
func TestRecordsEndToEnd(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	lab := w.account("lab", identity.RoleOrganization, "lab")
	docA := w.account("docA", identity.RolePractitioner, "")
	docB := w.account("docB", identity.RolePractitioner, "")
	patient := w.keys["patient"].Address()
	pat := w.agent("patient", "TREAT")
	year := time.Now().AddDate(1, 0, 0)

	if _, err := pat.Grant(ctx, consent.GrantMsg{Grantee: lab.Address(), Categories: []string{"laboratory"}, Purposes: []string{"TREAT"}, Expiry: year, Write: true}); err != nil {
		t.Fatal(err)
	}
	gA, err := pat.Grant(ctx, consent.GrantMsg{Grantee: docA.Address(), Categories: []string{"laboratory"}, Purposes: []string{"TREAT"}, Expiry: year})
	if err != nil {
		t.Fatal(err)
	}

	// The lab writes a result.
	result := example(t, "Observation-bloodgroup.json")
	stored, err := w.agent("lab", "TREAT").Add(ctx, result)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Anchor.Category != w.tag("laboratory") || stored.Anchor.Patient != patient {
		t.Fatalf("anchor = %+v", stored.Anchor)
	}
	id := stored.Anchor.ID

	// A reads and decrypts it.
	got, err := w.agent("docA", "TREAT").Read(ctx, id)
	if err != nil {
		t.Fatalf("A cannot read: %v", err)
	}
	if !bytes.Equal(got.JSON, result) {
		t.Fatal("A read different bytes than the lab wrote")
	}

	// B gets not-found, exactly as for a record that does not exist, and a denied audit event.
	if _, err := w.agent("docB", "TREAT").Read(ctx, id); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("B: err = %v", err)
	}
	if _, err := w.agent("docB", "TREAT").Read(ctx, "no-such-record"); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("B on an absent record: err = %v", err)
	}
	trail, err := w.reads(patient).Audit(ctx, patient, client.AuditFilter{Requester: docB.Address()})
	if err != nil || len(trail) == 0 || trail[0].Outcome != records.Denied {
		t.Fatalf("B's audit events = %+v, %v", trail, err)
	}
	// The node answers B's fetch with A's event exactly like a missing blob.
	evA, err := w.reads(patient).Audit(ctx, patient, client.AuditFilter{Requester: docA.Address()})
	if err != nil || len(evA) != 1 {
		t.Fatalf("A's events: %v %v", evA, err)
	}
	_, errStolen := w.c.GetBlob(ctx, docB, stored.Anchor.CiphertextHash, patient, evA[0].ID)
	_, errAbsent := w.c.GetBlob(ctx, docB, make([]byte, 32), patient, evA[0].ID)
	if !client.IsNotFound(errStolen) || fmt.Sprint(errStolen) != fmt.Sprint(errAbsent) {
		t.Fatalf("stolen event: %v; absent blob: %v", errStolen, errAbsent)
	}
	resp, err := http.Get("http://" + w.node.APIAddr + "/v1/blobs/" + fmt.Sprintf("%x", stored.Anchor.CiphertextHash))
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unsigned fetch: %v %v", resp.Status, err)
	}
	resp.Body.Close()

	// A wrong purpose fails; revocation takes effect at the next block.
	if _, err := w.agent("docA", "HRESCH").Read(ctx, id); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("wrong purpose: %v", err)
	}
	if err := pat.Revoke(ctx, patient, gA.Grant); err != nil {
		t.Fatal(err)
	}
	if _, err := w.agent("docA", "TREAT").Read(ctx, id); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("after revoke: %v", err)
	}

	// A grant to B that expires: it works, then stops with block time. The grant covers the
	// existing record at once (its key is released to B by the network key's holders).
	gB, err := pat.Grant(ctx, consent.GrantMsg{Grantee: docB.Address(), Categories: []string{"laboratory"}, Purposes: []string{"TREAT"}, Expiry: time.Now().Add(4 * time.Second)})
	if err != nil || gB.Grant == 0 {
		t.Fatalf("grant to B: %+v %v", gB, err)
	}
	if got, err := w.agent("docB", "TREAT").Read(ctx, id); err != nil || !bytes.Equal(got.JSON, result) {
		t.Fatalf("B within its grant: %v", err)
	}
	time.Sleep(5 * time.Second)
	if _, err := w.agent("docB", "TREAT").Read(ctx, id); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("B after expiry: %v", err)
	}

	// Erasure: nobody reads it again and the ciphertext leaves the node's disk.
	blobPath := filepath.Join(node.BlobDir(w.home), fmt.Sprintf("%x", stored.Anchor.CiphertextHash[:1]), fmt.Sprintf("%x", stored.Anchor.CiphertextHash))
	if _, err := os.Stat(blobPath); err != nil {
		t.Fatalf("ciphertext not on disk before erasure: %v", err)
	}
	receipt, err := pat.Erase(ctx, patient, id)
	if err != nil || receipt.Height == 0 || receipt.TxHash == "" {
		t.Fatalf("erase: %+v %v", receipt, err)
	}
	if _, err := os.Stat(blobPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ciphertext still on disk after erasure: %v", err)
	}
	for _, who := range []string{"patient", "lab"} {
		if _, err := w.agent(who, "TREAT").Read(ctx, id); !errors.Is(err, agent.ErrNotFound) {
			t.Fatalf("%s reads an erased record: %v", who, err)
		}
	}
	rec, err := w.record(ctx, id)
	if err != nil || rec.Status != records.StatusErased || len(rec.Keys) != 0 || rec.Erased.TxHash != receipt.TxHash {
		t.Fatalf("erased anchor = %+v %v", rec, err)
	}
}

// readAll returns a response body.
func readAll(t testing.TB, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSeedDemo(t *testing.T) {
	w := startWorld(t)
	patient := w.keys["patient"].Address()
	doc := agent.New(w.keys["doctor"], agent.Config{Patients: map[string]tx.Address{"example": patient}})
	s := agent.DemoSigners{Patient: w.keys["patient"], Doctor: w.keys["doctor"], Hospital: w.keys["hospital"]}
	if seeded, err := agent.SeedDemo(w.ctx, s, doc); err != nil || !seeded {
		t.Fatalf("seed: %v %v", seeded, err)
	}
	if seeded, err := agent.SeedDemo(w.ctx, s, doc); err != nil || seeded {
		t.Fatalf("second seed: %v %v", seeded, err)
	}
	all, err := doc.Search(w.ctx, patient, "", nil)
	if err != nil || len(all) != 4 {
		t.Fatalf("demo records = %d, %v", len(all), err)
	}
}

// reads is a client that signs its reads as the world's account addr (a patient reads its own
// data; an unsigned client is answered 401 for patient data).
func (w *world) reads(addr tx.Address) *client.Client {
	w.t.Helper()
	for _, s := range w.keys {
		if s.Address() == addr {
			return s.Reads()
		}
	}
	w.t.Fatalf("no account %s in this world", addr)
	return nil
}

// record reads a record's anchor as whichever of the world's accounts may see it (its patient).
func (w *world) record(ctx context.Context, id string) (*records.Record, error) {
	var err error
	for _, s := range w.keys {
		var rec *records.Record
		if rec, err = s.Reads().Record(ctx, id); err == nil {
			return rec, nil
		}
	}
	return nil, err
}

// grantLab has pat, the patient's agent, grant grantee TREAT access to the patient's laboratory
// records for a day.
func (w *world) grantLab(pat *agent.Agent, grantee tx.Address) *agent.GrantResult {
	w.t.Helper()
	g, err := pat.Grant(w.ctx, consent.GrantMsg{Grantee: grantee, Categories: []string{"laboratory"}, Purposes: []string{"TREAT"}, Expiry: w.later(24)})
	if err != nil {
		w.t.Fatal(err)
	}
	return g
}
