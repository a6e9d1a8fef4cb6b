package agent_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/tx"
)

// TestAttackCanaryNeverInClear (issue 10, parts 4 and the canary test): a patient's identifiers
// and clinical content (the FHIR Patient id the EHR knows, a medical record number, names, free
// text, the ids the EHR gave its resources) go through the FHIR facade into records that are
// written, read and audited; then every byte under the node's home (state, block store, WAL,
// indexes, ciphertexts, fetch log, the node's own debug log) and everything the node API and
// CometBFT's RPC serve without credentials is searched for each of them: none may appear.
//
// Break-glass reasons and review notes are canaries too: they travel sealed.
func TestAttackCanaryNeverInClear(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	nonce := make([]byte, 6)
	rand.Read(nonce)
	suffix := hex.EncodeToString(nonce)
	canaries := map[string]string{
		"FHIR patient id": "cnrypt" + suffix,
		"MRN":             "MRN-cnry-" + suffix,
		"family name":     "Cnryfamily" + suffix,
		"given name":      "Cnrygiven" + suffix,
		"free text":       "cnry note: patient reports " + suffix,
		"resource id":     "cnryobs" + suffix,
		// The records' categories and types: the patient's agent drew its tag key with its
		// grant, so the ledger names them by tag only.
		"category of the Patient":     "demographics",
		"category of the Observation": "vital-signs",
		"type of the Observation":     "Observation",
		"type of the Patient":         `"Patient"`, // quoted: the word is common
		"break-glass reason":          "cnry reason: found unconscious " + suffix,
		"review note":                 "cnry note: checked with the family " + suffix,
	}
	var logBuf lockedBuffer
	w := startWorldLogged(t, nil, slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := w.ctx
	p := w.keys["patient"].Address()
	if _, err := w.agent("patient", "TREAT").Grant(ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(24), Write: true}); err != nil {
		t.Fatal(err)
	}
	dir := map[string]tx.Address{canaries["FHIR patient id"]: p}
	doc := w.facadeFor("doctor", agent.Config{Patients: dir, Purpose: "TREAT", Trust: w.trust})

	patient := `{"resourceType":"Patient","id":"` + canaries["FHIR patient id"] + `","identifier":[{"system":"urn:oid:2.16.840.1.113883.2.4.6.3","value":"` +
		canaries["MRN"] + `"}],"name":[{"family":"` + canaries["family name"] + `","given":["` + canaries["given name"] + `"]}],"gender":"female"}`
	obs := `{"resourceType":"Observation","id":"` + canaries["resource id"] + `","status":"final","identifier":[{"value":"` + canaries["MRN"] +
		`"}],"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],` +
		`"code":{"text":"heart rate"},"subject":{"reference":"Patient/` + canaries["FHIR patient id"] + `"},"note":[{"text":"` + canaries["free text"] +
		`"}],"valueQuantity":{"value":88,"unit":"/min"}}`
	var ids []string
	// The patient's demographics go to its FHIR id (PUT); the Observation is created (POST).
	for _, res := range []struct{ method, path, body string }{{"PUT", "/fhir/Patient/" + canaries["FHIR patient id"], patient}, {"POST", "/fhir/Observation", obs}} {
		status, hdr, body := doc.do(res.method, res.path, []byte(res.body), true)
		if status != http.StatusCreated {
			t.Fatalf("%s %s = %d %s", res.method, res.path, status, body)
		}
		ids = append(ids, hdr.Get("Location")[:strings.Index(hdr.Get("Location"), "/_history")])
	}
	for _, path := range ids {
		status, _, body := doc.do("GET", path, nil, true)
		if status != http.StatusOK || !bytes.Contains(body, []byte(suffix)) {
			t.Fatalf("GET %s = %d %s", path, status, body)
		}
	}
	// A break-glass session, with its reason, and the patient's review of it with a note.
	w.account("cnry-er", identity.RolePractitioner, "", "emergency")
	session, err := agent.New(w.keys["cnry-er"], agent.Config{Purpose: "ETREAT"}).EmergencyOpen(ctx, p, canaries["break-glass reason"], 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.agent("patient", "TREAT").EmergencyReview(ctx, p, session, canaries["review note"], true); err != nil {
		t.Fatal(err)
	}
	// The reads are logged and the log committed to the ledger.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if f, err := w.reads(p).Fetches(ctx, p); err == nil && len(f) >= len(ids) {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("fetches not logged: %d %v", len(f), err)
		}
	}

	found := func(where string, data []byte) {
		t.Helper()
		for what, c := range canaries {
			if bytes.Contains(data, []byte(c)) {
				t.Errorf("%s (%s) found in %s", what, c, where)
			}
		}
	}
	// What the node API serves without credentials.
	base := "http://" + w.node.APIAddr
	for _, path := range []string{"/v1/status", "/v1/accounts/" + string(p), "/v1/accounts/" + string(w.keys["doctor"].Address()),
		"/v1/registrars", "/v1/network/members", "/v1/light/latest", "/metrics", "/v1/patients/" + string(p) + "/records"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		found("GET "+path, body)
	}
	// What CometBFT's RPC serves: every block's transactions and results.
	rpc, err := rpchttp.New("tcp://"+w.node.RPCAddr, "/websocket")
	if err != nil {
		t.Fatal(err)
	}
	st, err := rpc.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for h := int64(1); h <= st.SyncInfo.LatestBlockHeight; h++ {
		b, err := rpc.Block(ctx, &h)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range b.Block.Txs {
			found("a transaction of block "+strconv.FormatInt(h, 10), raw)
			if d, err := tx.Decode(raw); err == nil { // the body travels base64-encoded in the envelope
				found("a transaction body of block "+strconv.FormatInt(h, 10), d.Envelope.Body)
			}
		}
		if res, err := rpc.BlockResults(ctx, &h); err == nil {
			j, _ := json.Marshal(res)
			found("the results of block "+strconv.FormatInt(h, 10), j)
		}
	}
	// Every byte under the node's home, and the node's debug log.
	files := 0
	err = filepath.WalkDir(w.home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		found(path, data)
		return nil
	})
	if err != nil || files < 10 {
		t.Fatalf("walked %d files: %v", files, err)
	}
	found("the node's log", logBuf.Bytes())
	if len(logBuf.Bytes()) == 0 {
		t.Fatal("the node logged nothing: the log check proved nothing")
	}
}

// lockedBuffer is a bytes.Buffer the node's goroutines may log into while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
