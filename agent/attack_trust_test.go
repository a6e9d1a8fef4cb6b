package agent_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// lyingNode is a node API in front of a real one that can lie: it hands out a forged record (a
// ciphertext sealed by the liar for the reader, under its own hash and commitment, with the
// state value rewritten to match and the real proof kept), and it can swap a recipient's
// encryption key for the liar's.
type lyingNode struct {
	srv          *httptest.Server
	forgedID     string
	forgedRecord atomic.Pointer[[]byte] // the forged anchor's JSON
	forgedBlob   atomic.Pointer[[]byte]
	forgedHash   atomic.Pointer[string]
	swapKeyOf    atomic.Pointer[tx.Address] // recipient whose encryption key is replaced
	liarKey      []byte                     // the liar's X25519 public key
}

func newLyingNode(t *testing.T, real string, liarKey []byte) *lyingNode {
	u, _ := url.Parse("http://" + strings.TrimPrefix(real, "http://"))
	proxy := httputil.NewSingleHostReverseProxy(u)
	l := &lyingNode{liarKey: liarKey}
	proxy.ModifyResponse = func(resp *http.Response) error {
		path := resp.Request.URL.Path
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if who := l.swapKeyOf.Load(); who != nil && strings.HasSuffix(path, "/recipients") {
			var rs []app.Recipient
			if json.Unmarshal(body, &rs) == nil {
				for i := range rs {
					if rs[i].Address == *who {
						rs[i].EncryptionKey = l.liarKey
					}
				}
				body, _ = json.Marshal(rs)
			}
		}
		if rec := l.forgedRecord.Load(); rec != nil && strings.HasPrefix(path, "/v1/state/rc/v/"+l.forgedID+"/") {
			var p map[string]json.RawMessage
			if json.Unmarshal(body, &p) == nil {
				p["value"] = *rec
				body, _ = json.Marshal(p)
			}
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Del("Content-Length")
		return nil
	}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec := l.forgedRecord.Load(); rec != nil && r.Method == http.MethodGet && r.URL.Path == "/v1/records/"+l.forgedID {
			w.Header().Set("Content-Type", "application/json")
			w.Write(*rec)
			return
		}
		if h := l.forgedHash.Load(); h != nil && r.Method == http.MethodGet && r.URL.Path == "/v1/blobs/"+*h {
			w.Write(*l.forgedBlob.Load())
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

// forge makes the liar hand out, for record id, a resource of its own sealed for reader.
func (l *lyingNode) forge(t *testing.T, real *records.Record, reader tx.Address, readerKey []byte, chainID string, resource string) {
	t.Helper()
	s, err := seal.Seal([]byte(resource), records.SealContext(chainID, real.ID, real.Version), []seal.Recipient{{ID: string(reader), PublicKey: readerKey}})
	if err != nil {
		t.Fatal(err)
	}
	fake := *real
	fake.CiphertextHash, fake.Commitment = s.Hash[:], s.Commitment[:]
	fake.Keys = []records.WrappedKey{{Recipient: reader, Wrapped: s.Keys[0].Wrapped}}
	raw, _ := json.Marshal(&fake)
	hash := hex.EncodeToString(s.Hash[:])
	l.forgedID = real.ID
	l.forgedBlob.Store(&s.Ciphertext)
	l.forgedHash.Store(&hash)
	l.forgedRecord.Store(&raw)
}

// TestAttackLyingNode (issue 9, trusted reads in the agent): a node that forges what an agent
// relies on. Without proofs the agent opens a record the node made up and seals a new record to a
// key the node swapped in; with its light client (Config.Trust) it refuses both, and nothing is
// anchored with the liar's key.
func TestAttackLyingNode(t *testing.T) {
	w := startWorld(t)
	ctx := w.ctx
	patient := w.keys["patient"].Address()
	doctor := w.keys["doctor"]
	if _, err := w.agent("patient", "TREAT").Grant(ctx, consent.GrantMsg{Grantee: doctor.Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	stored, err := w.agent("doctor", "TREAT").Add(ctx, []byte(labResult))
	if err != nil {
		t.Fatal(err)
	}
	real, err := w.record(ctx, stored.Anchor.ID)
	if err != nil {
		t.Fatal(err)
	}

	liar, err := keyring.Generate("liar")
	if err != nil {
		t.Fatal(err)
	}
	l := newLyingNode(t, w.node.APIAddr, liar.Encryption.PublicKey().Bytes())
	viaLiar, err := client.NewSigner(ctx, client.New(l.srv.URL), doctor.Key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{Patients: map[string]tx.Address{"example": patient}}
	believing := agent.New(viaLiar, cfg)
	cfg.Trust = w.trust
	verifying := agent.New(viaLiar, cfg)

	// A forged record: the believing agent returns the liar's content as the patient's record.
	const forged = `{"resourceType":"Observation","status":"final","code":{"text":"FORGED"},"subject":{"reference":"Patient/example"}}`
	l.forge(t, real, doctor.Address(), doctor.Key.Encryption.PublicKey().Bytes(), w.node.ChainID, forged)
	got, err := believing.Read(ctx, real.ID)
	if err != nil || !strings.Contains(string(got.JSON), "FORGED") {
		t.Fatalf("control: the believing agent should open the forgery: %v", err)
	}
	if _, err := verifying.Read(ctx, real.ID); err == nil || !strings.Contains(err.Error(), "verif") {
		t.Fatalf("verifying agent read a forged record: %v", err)
	}
	// Through an honest node the same verifying agent reads the real record.
	l.forgedRecord.Store(nil)
	l.forgedHash.Store(nil)
	got, err = verifying.Read(ctx, real.ID)
	if err != nil || strings.Contains(string(got.JSON), "FORGED") || !strings.Contains(string(got.JSON), "718-7") {
		t.Fatalf("verifying agent, honest answers: %v", err)
	}

	// A swapped encryption key: the believing agent seals the new record to the liar.
	l.swapKeyOf.Store(&patient)
	leaked, err := believing.Add(ctx, []byte(labResult))
	if err != nil {
		t.Fatalf("control: the believing agent should anchor: %v", err)
	}
	if !liarCanUnwrap(leaked, liar, w.node.ChainID) {
		t.Fatal("control: the liar should hold the patient's key of the new record")
	}
	before, _ := w.reads(patient).PatientRecords(ctx, patient)
	if _, err := verifying.Add(ctx, []byte(labResult)); !errors.Is(err, agent.ErrUntrusted) {
		t.Fatalf("verifying agent sealed to a swapped key: %v", err)
	}
	after, _ := w.reads(patient).PatientRecords(ctx, patient)
	if len(after) != len(before) {
		t.Fatalf("a record was anchored after the refusal: %d -> %d", len(before), len(after))
	}
}

// liarCanUnwrap reports whether any wrapped key of the record opens with the liar's key.
func liarCanUnwrap(s *agent.Stored, liar *keyring.Key, chainID string) bool {
	ctx := records.SealContext(chainID, s.Anchor.ID, s.Anchor.Version)
	for _, k := range s.Anchor.Keys {
		if _, err := seal.Unwrap(k.Wrapped, ctx, liar.Encryption); err == nil {
			return true
		}
	}
	return false
}
