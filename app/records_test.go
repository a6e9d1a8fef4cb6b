package app_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// member is a test account with a real X25519 encryption key.
type member struct {
	*key
	enc *ecdh.PrivateKey
}

func newMember(name string) *member {
	seed := sha256.Sum256([]byte("enc/" + name))
	enc, _ := ecdh.X25519().NewPrivateKey(seed[:])
	return &member{key: newKey(name), enc: enc}
}

func (m *member) register(t testing.TB, role identity.Role, kind string) []byte {
	return m.sign(t, identity.TypeRegister, identity.Register{Role: role, OrgKind: kind, Name: identity.LedgerName(role, "acct "+string(m.addr[:6])),
		EncryptionKey: m.enc.PublicKey().Bytes()})
}

// recordsWorld is a chain with a patient, a lab, two practitioners, a hospital, an emergency
// practitioner and a compliance officer, all attested.
type recordsWorld struct {
	c                                                    *chain
	reg                                                  *key
	patient, lab, docA, docB, hospital, erDoc, complianc *member
	exp                                                  time.Time
}

// testTagKey is the world patient's tag key: the ledger names categories and resource types by
// the patient's tags only (tag, typeTag).
var testTagKey = bytes.Repeat([]byte{7}, records.TagKeyBytes)

// tag is what the ledger holds for a category: the world patient's tag of a category's name;
// anything else (a tag, "*", nonsense) passes as it is.
func tag(category string) string {
	if slices.Contains(consent.Categories, category) {
		return consent.CategoryTag(testTagKey, category)
	}
	return category
}

// tags is tag of each category.
func tags(categories []string) []string {
	out := make([]string, len(categories))
	for i, c := range categories {
		out[i] = tag(c)
	}
	return out
}

// typeTag is the world patient's tag of a FHIR resource type.
func typeTag(resourceType string) string { return consent.ResourceTypeTag(testTagKey, resourceType) }

// sealedText is a well-formed sealed text for patient (the ledger cannot open it, nor tell).
func sealedText(patient tx.Address) *records.SealedText {
	return &records.SealedText{Nonce: bytes.Repeat([]byte{1}, records.TextNonceBytes), Ciphertext: bytes.Repeat([]byte{2}, 1024),
		Commitment: bytes.Repeat([]byte{3}, 32), Keys: []records.WrappedKey{{Recipient: patient, Wrapped: bytes.Repeat([]byte{4}, 80)}},
		Network: bytes.Repeat([]byte{5}, 200)}
}

// setTagKey is patient's anchoring of tag key key.
func setTagKey(t testing.TB, patient *key, key []byte) []byte {
	var emergency []string
	for _, c := range consent.EmergencyCategories {
		emergency = append(emergency, consent.CategoryTag(key, c))
	}
	wrap, err := netkey.Wrap(testNetKey, key, records.TagKeyContext(chainID, patient.addr))
	if err != nil {
		t.Fatal(err)
	}
	return patient.sign(t, records.TypeSetTagKey, records.SetTagKey{Network: wrap, Emergency: emergency})
}

// newRecordsWorld builds the world, the patient's tag key anchored, and, when the test ends well,
// replays its blocks on a fresh app to check determinism.
func newRecordsWorld(t testing.TB) *recordsWorld {
	w := newBareRecordsWorld(t)
	w.c.must(setTagKey(t, w.patient.key, testTagKey))
	return w
}

// newBareRecordsWorld is newRecordsWorld before the patient has a tag key.
func newBareRecordsWorld(t testing.TB) *recordsWorld {
	w := &recordsWorld{reg: newKey("registrar"), patient: newMember("patient"), lab: newMember("lab"), docA: newMember("docA"),
		docB: newMember("docB"), hospital: newMember("hospital"), erDoc: newMember("erDoc"), complianc: newMember("compliance"),
		exp: genesisTime.Add(365 * 24 * time.Hour)}
	w.c = newChain(t, w.reg)
	w.c.block(w.patient.register(t, identity.RolePatient, ""), w.lab.register(t, identity.RoleOrganization, "lab"),
		w.docA.register(t, identity.RolePractitioner, ""), w.docB.register(t, identity.RolePractitioner, ""),
		w.hospital.register(t, identity.RoleOrganization, "hospital"), w.erDoc.register(t, identity.RolePractitioner, ""),
		w.complianc.register(t, identity.RolePractitioner, ""))
	attest := func(m *member, scopes ...string) []byte {
		return w.reg.sign(t, identity.TypeAttest, identity.Attest{Subject: m.addr, Licence: "L-" + string(m.addr[:4]), Jurisdiction: "NL", Scopes: scopes, ExpiresAt: w.exp})
	}
	w.c.block(attest(w.lab), attest(w.docA), attest(w.docB), attest(w.hospital), attest(w.erDoc, "emergency"), attest(w.complianc, "compliance"))
	t.Cleanup(func() {
		if !t.Failed() {
			w.c.assertReplays()
		}
	})
	return w
}

func (w *recordsWorld) grant(t testing.TB, to *member, cats []string, purpose string, write bool, exp time.Time) uint64 {
	t.Helper()
	res := w.c.block(w.patient.sign(t, consent.TypeGrant, consent.GrantMsg{Grantee: to.addr, Categories: tags(cats), Purposes: []string{purpose}, Expiry: exp, Write: write}))[0]
	if res.Code != 0 {
		t.Fatalf("grant: %s", res.Log)
	}
	id, _ := strconv.ParseUint(attr(res.Events[0].Attributes, "grant"), 10, 64)
	return id
}

// recordsQuery answers a records query path; a patient-scoped one is read by the patient unless
// q names another reader.
func (w *recordsWorld) recordsQuery(t testing.TB, path string, q app.RecordsQuery, v any) {
	t.Helper()
	if q.Reader == "" {
		q.Reader = w.patient.addr
	}
	data, _ := json.Marshal(q)
	if err := json.Unmarshal(query(t, w.c, path, data), v); err != nil {
		t.Fatal(err)
	}
}

// testNetKey stands for the network key: these chains have no validators to hold it, so the
// tests release and combine its shares themselves (released), as the holders' nodes do.
var testNetKey, testShares = func() (*netkey.Public, []netkey.Share) {
	pub, shares, err := netkey.Deal(4)
	if err != nil {
		panic(err)
	}
	return pub, shares
}()

// released is what the network key's holders give who for access event ev on record id's
// latest version: the data key when the chain finds the access still valid (PathReleasable, as
// a holder's node asks it), else nothing.
func (w *recordsWorld) released(t testing.TB, who *member, ev records.AccessEvent, id string) ([]byte, bool) {
	t.Helper()
	var rec records.Record
	w.recordsQuery(t, app.PathRecord, app.RecordsQuery{ID: id}, &rec)
	var rel app.Releasable
	w.recordsQuery(t, app.PathReleasable, app.RecordsQuery{Requester: who.addr, Patient: ev.Patient, Access: ev.ID, ID: id, Version: rec.Version,
		At: genesisTime.Add(time.Duration(w.c.height)*time.Second + w.c.skew)}, &rel)
	if !rel.Active {
		return nil, false
	}
	wrapped, err := netkey.ParseWrapped(rel.Record.Network, records.SealContext(chainID, id, rec.Version))
	if err != nil {
		t.Fatal(err)
	}
	var shares []*netkey.DecShare
	for i := range testShares[:testNetKey.Threshold] {
		d, err := netkey.Release(&testShares[i], wrapped)
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, d)
	}
	key, err := netkey.Combine(testNetKey, wrapped, shares)
	if err != nil {
		t.Fatal(err)
	}
	return key, true
}

// seal encrypts plaintext for the recipients the chain requires (the patient and the author),
// with drop left out and add added, and wraps its key for the network key.
func (w *recordsWorld) seal(t testing.TB, author *member, id string, version uint32, category string, plaintext []byte, drop, add *member) (*records.Anchor, *seal.Sealed) {
	t.Helper()
	var rs []app.Recipient
	category = tag(category)
	w.recordsQuery(t, app.PathRecipients, app.RecordsQuery{Patient: w.patient.addr, Author: author.addr, Category: category, At: genesisTime.Add(time.Duration(w.c.height+1)*time.Second + w.c.skew)}, &rs)
	var recips []seal.Recipient
	for _, r := range rs {
		if drop != nil && r.Address == drop.addr {
			continue
		}
		recips = append(recips, seal.Recipient{ID: string(r.Address), PublicKey: r.EncryptionKey})
	}
	if add != nil {
		recips = append(recips, seal.Recipient{ID: string(add.addr), PublicKey: add.enc.PublicKey().Bytes()})
	}
	s, err := seal.Seal(plaintext, records.SealContext(chainID, id, version), recips)
	if err != nil {
		t.Fatal(err)
	}
	network, err := netkey.Wrap(testNetKey, s.DataKey, records.SealContext(chainID, id, version))
	if err != nil {
		t.Fatal(err)
	}
	m := &records.Anchor{ID: id, Version: version, Patient: w.patient.addr, ResourceType: typeTag("Observation"), Category: category,
		CiphertextHash: s.Hash[:], Commitment: s.Commitment[:], Size: int64(len(s.Ciphertext)), Network: network}
	for _, k := range s.Keys {
		m.Keys = append(m.Keys, records.WrappedKey{Recipient: tx.Address(k.Recipient), Wrapped: k.Wrapped})
	}
	return m, s
}

// access submits an access request and returns its audit event.
func (w *recordsWorld) access(t testing.TB, who *member, msg records.Access) records.AccessEvent {
	t.Helper()
	msg.Category = tag(msg.Category)
	res := w.c.block(who.sign(t, records.TypeAccess, msg))[0]
	if res.Code != 0 {
		t.Fatalf("access tx failed: %s", res.Log)
	}
	id, _ := strconv.ParseUint(attr(res.Events[0].Attributes, "id"), 10, 64)
	var ev records.AccessEvent
	w.recordsQuery(t, app.PathAccess, app.RecordsQuery{Patient: msg.Patient, Access: id}, &ev)
	return ev
}

func (w *recordsWorld) fetchable(t testing.TB, who *member, ev records.AccessEvent, hash []byte) bool {
	t.Helper()
	var ok bool
	w.recordsQuery(t, app.PathFetchable, app.RecordsQuery{Requester: who.addr, Patient: w.patient.addr, Access: ev.ID, Hash: hash,
		At: genesisTime.Add(time.Duration(w.c.height)*time.Second + w.c.skew)}, &ok)
	return ok
}

func TestRecordsAnchorAccessAuditErase(t *testing.T) {
	w := newRecordsWorld(t)
	c, pat := w.c, w.patient.addr
	lab := []string{"laboratory"}
	plain := []byte(`{"resourceType":"Observation","status":"final"}`)

	// Without a write grant the lab cannot add records.
	m, _ := w.seal(t, w.lab, "rec-1", 1, "laboratory", plain, nil, nil)
	c.expect(w.lab.sign(t, records.TypeAnchor, m), codes.Unauthorized)
	w.grant(t, w.lab, lab, "TREAT", true, w.exp)
	grantA := w.grant(t, w.docA, lab, "TREAT", false, w.exp)

	// The chain checks the recipient set: exactly the patient and the author, and a wrap for the
	// network key. A missing author, a key for a grantee, or no network wrap is refused.
	m, _ = w.seal(t, w.lab, "rec-1", 1, "laboratory", plain, w.lab, nil)
	c.expect(w.lab.sign(t, records.TypeAnchor, m), codes.Invalid)
	m, _ = w.seal(t, w.lab, "rec-1", 1, "laboratory", plain, nil, w.docA)
	c.expect(w.lab.sign(t, records.TypeAnchor, m), codes.Invalid)
	m, _ = w.seal(t, w.lab, "rec-1", 1, "laboratory", plain, nil, nil)
	m.Network = m.Network[:len(m.Network)-1]
	c.expect(w.lab.sign(t, records.TypeAnchor, m), codes.Invalid)
	m, sealed := w.seal(t, w.lab, "rec-1", 1, "laboratory", plain, nil, nil)
	c.must(w.lab.sign(t, records.TypeAnchor, m))
	c.expect(w.lab.sign(t, records.TypeAnchor, m), codes.Invalid) // same version again

	// A, granted, reads and decrypts; B gets a denial recorded in the audit trail.
	evA := w.access(t, w.docA, records.Access{Patient: pat, Record: "rec-1", Purpose: "TREAT"})
	if evA.Outcome != records.Granted || evA.Grant != grantA || evA.Basis != "grant" || evA.Category != tag("laboratory") {
		t.Fatalf("A's access = %+v", evA)
	}
	if !w.fetchable(t, w.docA, evA, sealed.Hash[:]) {
		t.Fatal("A's granted access does not allow fetching the ciphertext")
	}
	var rec records.Record
	w.recordsQuery(t, app.PathRecord, app.RecordsQuery{ID: "rec-1"}, &rec)
	if rec.KeyFor(w.docA.addr) != nil {
		t.Fatal("a grantee holds a wrapped key on chain")
	}
	dk, ok := w.released(t, w.docA, evA, "rec-1")
	if !ok {
		t.Fatal("A's granted access releases no key")
	}
	var commit [32]byte
	copy(commit[:], rec.Commitment)
	if got, err := seal.Open(sealed.Ciphertext, records.SealContext(chainID, "rec-1", 1), dk, commit); err != nil || string(got) != string(plain) {
		t.Fatalf("A cannot decrypt: %v", err)
	}
	evB := w.access(t, w.docB, records.Access{Patient: pat, Record: "rec-1", Purpose: "TREAT"})
	if evB.Outcome != records.Denied || w.fetchable(t, w.docB, evB, sealed.Hash[:]) || w.fetchable(t, w.docB, evA, sealed.Hash[:]) {
		t.Fatalf("B was let in: %+v", evB)
	}
	if _, ok := w.released(t, w.docB, evB, "rec-1"); ok {
		t.Fatal("B's denied access releases the key")
	}
	if _, ok := w.released(t, w.docB, evA, "rec-1"); ok {
		t.Fatal("B citing A's access gets the key")
	}
	if ev := w.access(t, w.docB, records.Access{Patient: pat, Record: "no-such-record", Purpose: "TREAT"}); ev.Outcome != records.Denied {
		t.Fatalf("access to an absent record: %+v", ev)
	}
	if ev := w.access(t, w.docA, records.Access{Patient: pat, Record: "rec-1", Purpose: "HRESCH"}); ev.Outcome != records.Denied {
		t.Fatal("wrong purpose granted")
	}
	if ev := w.access(t, w.docA, records.Access{Patient: pat, Category: "medications", Purpose: "TREAT"}); ev.Outcome != records.Denied {
		t.Fatal("ungranted category granted")
	}
	c.expect(w.docA.sign(t, records.TypeAccess, records.Access{Patient: pat, Record: "rec-1", Purpose: "GOSSIP"}), codes.Invalid)
	c.expect(w.docA.sign(t, records.TypeAccess, records.Access{Patient: pat, Purpose: "TREAT"}), codes.Invalid)

	// The patient's audit trail holds every request, filterable by reader.
	var trail []records.AccessEvent
	w.recordsQuery(t, app.PathAudit, app.RecordsQuery{Patient: pat}, &trail)
	if len(trail) != 5 {
		t.Fatalf("audit trail has %d events, want 5", len(trail))
	}
	w.recordsQuery(t, app.PathAudit, app.RecordsQuery{Patient: pat, Requester: w.docB.addr}, &trail)
	if len(trail) != 2 || trail[0].Requester != w.docB.addr || trail[0].Outcome != records.Denied {
		t.Fatalf("B's audit events = %+v", trail)
	}

	// A new version supersedes the old; history stays.
	m2, _ := w.seal(t, w.lab, "rec-1", 2, "laboratory", []byte(`{"resourceType":"Observation","status":"amended"}`), nil, nil)
	c.must(w.lab.sign(t, records.TypeAnchor, m2))
	var hist []records.Record
	w.recordsQuery(t, app.PathHistory, app.RecordsQuery{ID: "rec-1"}, &hist)
	if len(hist) != 2 || hist[0].Status != records.StatusSuperseded || hist[1].Status != records.StatusActive {
		t.Fatalf("history = %+v", hist)
	}

	// Revocation takes effect at the next block: A's next request is denied and the earlier
	// event no longer lets A fetch.
	c.must(w.patient.sign(t, consent.TypeRevoke, consent.RevokeMsg{ID: grantA}))
	if w.fetchable(t, w.docA, evA, sealed.Hash[:]) {
		t.Fatal("a revoked grant still lets A fetch")
	}
	if _, ok := w.released(t, w.docA, evA, "rec-1"); ok {
		t.Fatal("a revoked grant still gets A the key released")
	}
	if ev := w.access(t, w.docA, records.Access{Patient: pat, Record: "rec-1", Purpose: "TREAT"}); ev.Outcome != records.Denied {
		t.Fatal("access after revocation granted")
	}

	// An expired grant stops working with block time.
	w.grant(t, w.docB, lab, "TREAT", false, genesisTime.Add(time.Duration(c.height+3)*time.Second))
	evB = w.access(t, w.docB, records.Access{Patient: pat, Category: "laboratory", Purpose: "TREAT"})
	if evB.Outcome != records.Granted {
		t.Fatalf("B's fresh grant denied: %+v", evB)
	}
	if _, ok := w.released(t, w.docB, evB, "rec-1"); !ok {
		t.Fatal("B's category access releases no key")
	}
	c.skew += time.Hour
	if _, ok := w.released(t, w.docB, evB, "rec-1"); ok {
		t.Fatal("an expired grant still gets B the key released")
	}
	if ev := w.access(t, w.docB, records.Access{Patient: pat, Category: "laboratory", Purpose: "TREAT"}); ev.Outcome != records.Denied {
		t.Fatal("expired grant granted")
	}

	// Erasure: keys leave the state, everyone is denied, a receipt proves it.
	c.expect(w.docA.sign(t, records.TypeErase, records.Erase{Patient: pat, ID: "rec-1"}), codes.Unauthorized)
	res := c.block(w.patient.sign(t, records.TypeErase, records.Erase{ID: "rec-1"}))[0]
	if res.Code != 0 || len(res.Events) != 2 {
		t.Fatalf("erase: %d %s %v", res.Code, res.Log, res.Events)
	}
	hist = nil // Unmarshal would keep fields the erased versions omit
	w.recordsQuery(t, app.PathHistory, app.RecordsQuery{ID: "rec-1"}, &hist)
	for _, v := range hist {
		if v.Status != records.StatusErased || len(v.Keys) != 0 || v.Network != nil || v.Commitment != nil || v.Erased == nil || v.Erased.Height != c.height {
			t.Fatalf("erased version still holds data: %+v", v)
		}
	}
	if ev := w.access(t, w.patient, records.Access{Patient: pat, Record: "rec-1", Purpose: "TREAT"}); ev.Outcome != records.Denied {
		t.Fatal("an erased record is still accessible")
	}
	c.expect(w.patient.sign(t, records.TypeErase, records.Erase{ID: "rec-1"}), codes.Invalid)
	m3, _ := w.seal(t, w.lab, "rec-1", 3, "laboratory", plain, nil, nil)
	c.expect(w.lab.sign(t, records.TypeAnchor, m3), codes.Invalid)
}

func TestRecordsOrgGrants(t *testing.T) {
	w := newRecordsWorld(t)
	c, pat := w.c, w.patient.addr
	m, _ := w.seal(t, w.patient, "own-1", 1, "immunizations", []byte(`{"resourceType":"Immunization"}`), nil, nil)
	c.must(w.patient.sign(t, records.TypeAnchor, m))

	// A grant to the hospital covers practitioners it affiliates, and only while affiliated.
	w.grant(t, w.hospital, []string{consent.AllCategories}, "TREAT", false, w.exp)
	if ev := w.access(t, w.docB, records.Access{Patient: pat, Record: "own-1", Purpose: "TREAT"}); ev.Outcome != records.Denied {
		t.Fatal("unaffiliated practitioner granted")
	}
	c.expect(w.lab.sign(t, identity.TypeAffiliate, identity.Affiliate{Practitioner: w.hospital.addr, Until: w.exp}), codes.Invalid)
	c.must(w.hospital.sign(t, identity.TypeAffiliate, identity.Affiliate{Practitioner: w.docB.addr, Until: w.exp}))
	ev := w.access(t, w.docB, records.Access{Patient: pat, Record: "own-1", Purpose: "TREAT"})
	if ev.Outcome != records.Granted || ev.Basis != "grant" {
		t.Fatalf("affiliated practitioner denied: %+v", ev)
	}
	// The record predates the grant and nothing was re-wrapped: the practitioner's key comes
	// from the network key's holders, for as long as the affiliation lasts.
	if _, ok := w.released(t, w.docB, ev, "own-1"); !ok {
		t.Fatal("the affiliated practitioner's access releases no key")
	}
	c.must(w.hospital.sign(t, identity.TypeUnaffiliate, identity.Unaffiliate{Practitioner: w.docB.addr}))
	if _, ok := w.released(t, w.docB, ev, "own-1"); ok {
		t.Fatal("a practitioner who left the organization still gets the key")
	}
	if ev := w.access(t, w.docB, records.Access{Patient: pat, Record: "own-1", Purpose: "TREAT"}); ev.Outcome != records.Denied {
		t.Fatal("access continued after the affiliation ended")
	}

}

func TestRecordsBreakGlass(t *testing.T) {
	w := newRecordsWorld(t)
	c, pat := w.c, w.patient.addr
	c.expect(w.patient.sign(t, records.TypeSettings, records.SettingsMsg{Settings: records.Settings{EmergencyOrgs: []tx.Address{w.docA.addr}}}), codes.Unauthorized)
	c.must(w.patient.sign(t, records.TypeSettings, records.SettingsMsg{Settings: records.Settings{EmergencyOrgs: []tx.Address{w.hospital.addr}}}))
	// Emergency organizations get no wrapped keys: their practitioners' keys come from the
	// network key's holders during a break-glass session.
	m, _ := w.seal(t, w.patient, "allergy-1", 1, "allergies", []byte(`{"resourceType":"AllergyIntolerance"}`), nil, w.hospital)
	c.expect(w.patient.sign(t, records.TypeAnchor, m), codes.Invalid)
	m, _ = w.seal(t, w.patient, "allergy-1", 1, "allergies", []byte(`{"resourceType":"AllergyIntolerance"}`), nil, nil)
	c.must(w.patient.sign(t, records.TypeAnchor, m))

	open := records.EmergencyOpen{Patient: pat, SealedReason: sealedText(pat)}
	c.expect(w.docA.sign(t, records.TypeEmergencyOpen, open), codes.Unauthorized)                            // no emergency attestation
	c.expect(w.erDoc.sign(t, records.TypeEmergencyOpen, records.EmergencyOpen{Patient: pat}), codes.Invalid) // no reason
	if ev := w.access(t, w.erDoc, records.Access{Patient: pat, Category: "allergies", Purpose: "ETREAT"}); ev.Outcome != records.Denied {
		t.Fatal("emergency access without a session")
	}
	// A practitioner who acts for none of the patient's emergency organizations may open a
	// session (the patient is told) but it lets it read nothing, even once it joins one.
	c.must(w.erDoc.sign(t, records.TypeEmergencyOpen, open))
	if ev := w.access(t, w.erDoc, records.Access{Patient: pat, Record: "allergy-1", Purpose: "ETREAT"}); ev.Outcome != records.Denied {
		t.Fatalf("break-glass by an outsider of the emergency organizations: %+v", ev)
	}
	c.must(w.hospital.sign(t, identity.TypeAffiliate, identity.Affiliate{Practitioner: w.erDoc.addr, Until: w.exp}))
	if ev := w.access(t, w.erDoc, records.Access{Patient: pat, Record: "allergy-1", Purpose: "ETREAT"}); ev.Outcome != records.Denied {
		t.Fatalf("a session opened as an outsider began to count: %+v", ev)
	}
	c.must(w.erDoc.sign(t, records.TypeEmergencyOpen, open))
	ev := w.access(t, w.erDoc, records.Access{Patient: pat, Record: "allergy-1", Purpose: "ETREAT"})
	if ev.Outcome != records.Granted || ev.Basis != "emergency" || ev.Emergency != 2 {
		t.Fatalf("break-glass access denied: %+v", ev)
	}
	if _, ok := w.released(t, w.erDoc, ev, "allergy-1"); !ok {
		t.Fatal("the break-glass access releases no key")
	}
	for _, req := range []records.Access{{Patient: pat, Category: "laboratory", Purpose: "ETREAT"}, {Patient: pat, Category: "allergies", Purpose: "TREAT"}} {
		if ev := w.access(t, w.erDoc, req); ev.Outcome != records.Denied {
			t.Fatalf("break-glass opened %+v", req)
		}
	}
	var feed []records.Notification
	w.recordsQuery(t, app.PathFeed, app.RecordsQuery{Patient: pat}, &feed)
	if len(feed) != 2 || feed[1].Kind != "emergency_access" || feed[1].Actor != w.erDoc.addr || feed[1].Ref != 2 {
		t.Fatalf("patient not notified: %+v", feed)
	}
	var trail []records.AccessEvent
	w.recordsQuery(t, app.PathAudit, app.RecordsQuery{Patient: pat, Requester: w.erDoc.addr}, &trail)
	if len(trail) != 8 || trail[1].Outcome != records.Denied || trail[4].Basis != "emergency" || trail[4].Emergency != 2 {
		t.Fatalf("emergency audit = %+v", trail)
	}

	// Reviewed by the patient or a compliance officer, once.
	c.expect(w.docA.sign(t, records.TypeEmergencyReview, records.EmergencyReview{Patient: pat, ID: 2}), codes.Unauthorized)
	c.must(w.complianc.sign(t, records.TypeEmergencyReview, records.EmergencyReview{Patient: pat, ID: 2, SealedNote: sealedText(pat)}))
	c.expect(w.patient.sign(t, records.TypeEmergencyReview, records.EmergencyReview{Patient: pat, ID: 2}), codes.Invalid)
	var sessions []records.EmergencySession
	w.recordsQuery(t, app.PathEmergency, app.RecordsQuery{Patient: pat}, &sessions)
	if len(sessions) != 2 || sessions[1].Reviewed == nil || sessions[1].Reviewed.By != w.complianc.addr {
		t.Fatalf("sessions = %+v", sessions)
	}

	// Time-boxed: after 24 h the session is closed.
	c.skew += 25 * time.Hour
	if ev := w.access(t, w.erDoc, records.Access{Patient: pat, Record: "allergy-1", Purpose: "ETREAT"}); ev.Outcome != records.Denied {
		t.Fatal("emergency session outlived its time box")
	}
	if _, ok := w.released(t, w.erDoc, ev, "allergy-1"); ok {
		t.Fatal("an ended emergency session still releases the key")
	}
	// A patient who opts out cannot be broken into.
	c.must(w.patient.sign(t, records.TypeSettings, records.SettingsMsg{Settings: records.Settings{EmergencyOptOut: true}}))
	c.expect(w.erDoc.sign(t, records.TypeEmergencyOpen, open), codes.Unauthorized)
}

func attr(attrs []abci.EventAttribute, key string) string {
	for _, a := range attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}
