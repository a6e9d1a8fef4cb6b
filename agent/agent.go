// Package agent is the edge of medchain: it holds one account's keys and does all record crypto
// next to the user (a patient's device, a clinician's EHR, a lab's system). It validates FHIR
// resources, seals them for the recipients the consent requires, uploads ciphertext to a node and
// anchors it; it asks for access, fetches ciphertext with its granted access event, unwraps its
// key and checks the plaintext against the on-chain commitment. Nodes never see plaintext or
// keys. The FHIR REST facade (facade.go) serves all of this to EHRs and apps.
package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/atna"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/custody"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// ErrNotFound is the answer for a record that does not exist and for one this account may not
// read: the two are indistinguishable by design.
var ErrNotFound = errors.New("not found")

// ErrNoPatient is returned for a resource whose patient the agent cannot map to an account.
var ErrNoPatient = errors.New("the resource names no patient this agent knows")

// ErrNoPatientRef is returned for a resource that references no patient at all (in subject,
// patient or beneficiary): it is refused rather than filed under some patient.
var ErrNoPatientRef = errors.New("resource names no patient")

// ErrNoWriteGrant is a write for a patient whose grants do not let this account write the
// resource's category (nor is it the patient or a guardian).
var ErrNoWriteGrant = errors.New("no write grant of this patient covers the category")

// ErrOtherPatient is returned for an update whose resource names another patient than the
// record's: an update never moves a record to another patient.
var ErrOtherPatient = errors.New("the resource names another patient than the record it updates; a record cannot move to another patient")

// ErrGone is a read of a record that was erased, for its patient or author (who knew of it); it
// is also ErrNotFound, which is all anyone else gets.
var ErrGone = fmt.Errorf("%w: the record was erased", ErrNotFound)

// ErrVersionMismatch is an update whose expected version (If-Match) is not the record's latest.
var ErrVersionMismatch = errors.New("the record's latest version is not the one the update expects")

// ErrVersionConflict is an update that lost a race: another version of the record was written
// first.
var ErrVersionConflict = errors.New("another update of the record was written first; read it and update again")

// Config configures an agent.
type Config struct {
	// Patients maps FHIR Patient ids to patient accounts. A 40-hex-digit account address is
	// accepted as a Patient id without an entry.
	Patients map[string]tx.Address
	// Purpose is the purpose of use of this agent's reads and writes (default TREAT).
	Purpose string
	// ReleaseTimeout bounds one key release request to a network key holder (default 10 s).
	ReleaseTimeout time.Duration

	// BodyBudget bounds the request body bytes the FHIR facade holds at once: a request counts
	// its Content-Length (at least MinBodyWeight; fhir.MaxResourceBytes when it declares none)
	// from before its body is read until it is answered. Default DefaultBodyBudget; negative
	// means unbounded.
	BodyBudget int64
	// BodyWait is how long a request waits for room in BodyBudget before it is answered 503
	// with Retry-After (default 2 s; negative: not at all).
	BodyWait time.Duration

	// MinCopies is how many nodes must hold a new record's ciphertext before a write succeeds
	// (default 2; a network of fewer nodes needs them all). CopiesWait bounds the wait for them
	// (default 20 s).
	MinCopies  int
	CopiesWait time.Duration

	// Trust, when set, verifies with proofs and the light client what the agent relies on: the
	// encryption keys it seals to, the signing keys it checks, the anchors it opens. Without it
	// the agent believes its node (tests and benchmarks of the node alone).
	Trust *client.Trust

	// Audit, when set, receives this account's access events (granted or denied) as FHIR
	// AuditEvents (IHE BALP) as they commit: an IHE ATNA syslog forwarder (atna.Forwarder).
	Audit AuditSink

	// Custody, when set, lets an organization's or practitioner's agent register patients
	// (RegisterPatient, FHIR POST /Patient): it keeps their custodial keys and the directory of
	// them (FHIR ids, identifiers), whose patients the agent serves by FHIR id.
	Custody *custody.Store

	// ServiceKeys are the service keys of the policies this provider bills, by "<insurer>/<policy>"
	// (the insurer shares a policy's key with the providers it contracts): a claim names its
	// services on the ledger by their tags under the key (insurance.ServiceTag).
	ServiceKeys map[string][]byte
}

// Defaults of the facade's body budget.
const (
	// DefaultBodyBudget admits two maximal resources at once and, beside them, 16 small ones.
	// Validating a resource costs tens of times its size (a 4 MiB Observation of many small
	// elements peaked at ~110 MiB), so this bounds the facade's write memory to a few hundred MiB.
	DefaultBodyBudget     = 2*fhir.MaxResourceBytes + 16*MinBodyWeight
	MinBodyWeight         = 64 << 10
	DefaultBodyWait       = 2 * time.Second
	DefaultReleaseTimeout = 10 * time.Second
	DefaultMinCopies      = 2
	DefaultCopiesWait     = 20 * time.Second
)

// Agent acts for one account.
type Agent struct {
	signer *client.Signer
	node   *client.Client
	// challenges are the coverage challenges this agent issued as a verifier (coverage_held.go).
	challenges *challenges
	cfg        Config
	mu         sync.RWMutex // guards cfg.Patients and selfRole
	keys       *keyRelease  // the network key and requests to its holders
	sess       *sessions    // granted access events still in force, reused for reads
	// anchors are the record anchors checkRecord verified (by anchorID); a sync.Map of them
	// never needs more than one entry per record version read.
	anchors *sync.Map
	tags    *tagKeys // patients' tag keys this agent got
	index   *searchIndex

	selfRole identity.Role // this account's role once looked up
}

// New returns an agent that signs with signer's key against its node.
func New(signer *client.Signer, cfg Config) *Agent {
	if cfg.Purpose == "" {
		cfg.Purpose = "TREAT"
	}
	if cfg.Patients == nil {
		cfg.Patients = map[string]tx.Address{}
	}
	if cfg.ReleaseTimeout <= 0 {
		cfg.ReleaseTimeout = DefaultReleaseTimeout
	}
	if cfg.BodyBudget == 0 {
		cfg.BodyBudget = DefaultBodyBudget
	}
	if cfg.BodyWait == 0 {
		cfg.BodyWait = DefaultBodyWait
	}
	if cfg.MinCopies <= 0 {
		cfg.MinCopies = DefaultMinCopies
	}
	if cfg.CopiesWait <= 0 {
		cfg.CopiesWait = DefaultCopiesWait
	}
	hc := &http.Client{Transport: client.NewTransport(), Timeout: cfg.ReleaseTimeout}
	keys := &keyRelease{http: hc, auth: reqsig.NewSessions(signer.ChainID, signer.Address(), signer.Key.Signing, hc)}
	a := &Agent{signer: signer, node: signer.Reads(), cfg: cfg, keys: keys, sess: &sessions{}, anchors: &sync.Map{}, tags: &tagKeys{}, index: &searchIndex{},
		challenges: &challenges{pending: map[string]pendingChallenge{}}}
	a.loadCustody()
	return a
}

// Address is the agent's account.
func (a *Agent) Address() tx.Address { return a.signer.Address() }

// ChainID is the chain the agent's transactions are for.
func (a *Agent) ChainID() string { return a.signer.ChainID }

// SetPatient maps a FHIR Patient id to an account.
func (a *Agent) SetPatient(fhirID string, acct tx.Address) {
	a.mu.Lock()
	a.cfg.Patients[fhirID] = acct
	a.mu.Unlock()
}

// PatientAccount resolves a FHIR Patient id ("example" or "Patient/example") to an account. An
// empty id is ErrNoPatientRef: nothing is filed under a default patient.
func (a *Agent) PatientAccount(fhirID string) (tx.Address, error) {
	fhirID = strings.TrimPrefix(fhirID, "Patient/")
	if fhirID == "" {
		return "", ErrNoPatientRef
	}
	a.mu.RLock()
	acct, ok := a.cfg.Patients[fhirID]
	a.mu.RUnlock()
	if ok {
		return acct, nil
	}
	if tx.Address(fhirID).Validate() == nil {
		return tx.Address(fhirID), nil
	}
	return "", ErrNoPatient
}

// Stored is a record the agent wrote.
type Stored struct {
	Anchor   *records.Anchor
	Resource *fhir.Resource
	Height   int64
	TxHash   string
	// FHIRID is the id the resource is served under when it is not the record's id (the FHIR id
	// of a directory patient's demographics).
	FHIRID string
}

// ServedID is the id the facade serves the stored resource under.
func (s *Stored) ServedID() string {
	if s.FHIRID != "" {
		return s.FHIRID
	}
	return s.Anchor.ID
}

// Add validates a FHIR resource, seals it and anchors it as a new record of the patient it
// references (ErrNoPatientRef if none). The record id is assigned here (FHIR create semantics).
func (a *Agent) Add(ctx context.Context, raw []byte) (*Stored, error) {
	res, err := fhir.Parse(raw)
	if err != nil {
		return nil, err
	}
	return a.AddResource(ctx, res)
}

// AddResource is Add for a resource already parsed with fhir.Parse.
func (a *Agent) AddResource(ctx context.Context, res *fhir.Resource) (*Stored, error) {
	w, err := a.planAdd(ctx, res, newID())
	if err != nil {
		return nil, err
	}
	return a.anchor(ctx, w)
}

// write is a record version to anchor: the resource, its patient, what the ledger files it
// under (the patient's tags of its category and type), its id and version.
type write struct {
	res                    *fhir.Resource
	patient                tx.Address
	category, resourceType string
	id                     string
	version                uint32
}

// planAdd plans res as the first version of a new record id of the patient it references.
func (a *Agent) planAdd(ctx context.Context, res *fhir.Resource, id string) (*write, error) {
	patient, err := a.PatientAccount(res.Patient)
	if err != nil {
		return nil, err
	}
	return a.planAddFor(ctx, res, patient, id)
}

// planAddFor is planAdd for patient.
func (a *Agent) planAddFor(ctx context.Context, res *fhir.Resource, patient tx.Address, id string) (*write, error) {
	if err := a.writerTagKey(ctx, patient); err != nil {
		return nil, err
	}
	category, err := a.CategoryTag(ctx, patient, res.Category)
	if err != nil {
		return nil, err
	}
	resourceType, err := a.ResourceTypeTag(ctx, patient, res.Type)
	if err != nil {
		return nil, err
	}
	return &write{res: res, patient: patient, category: category, resourceType: resourceType, id: id, version: 1}, nil
}

// Update anchors raw as the next version of record id.
func (a *Agent) Update(ctx context.Context, id string, raw []byte) (*Stored, error) {
	res, err := fhir.Parse(raw)
	if err != nil {
		return nil, err
	}
	return a.UpdateResource(ctx, id, res)
}

// UpdateResource anchors a parsed resource as the next version of record id. The resource must
// reference the record's patient (ErrNoPatientRef, ErrNoPatient, ErrOtherPatient otherwise) and
// be of the record's type. A record that is absent, erased, of another type, or whose key this
// account was never given (it is neither the record's patient nor its author) is ErrNotFound, alike: the answer
// says nothing about a record the account cannot see.
func (a *Agent) UpdateResource(ctx context.Context, id string, res *fhir.Resource) (*Stored, error) {
	return a.UpdateResourceIf(ctx, id, res, 0)
}

// UpdateResourceIf is UpdateResource when the record's latest version is ifVersion (0: any),
// else ErrVersionMismatch (FHIR's If-Match). An update that loses a race with another is
// ErrVersionConflict.
func (a *Agent) UpdateResourceIf(ctx context.Context, id string, res *fhir.Resource, ifVersion uint32) (*Stored, error) {
	w, err := a.planUpdate(ctx, id, res, ifVersion)
	if err != nil {
		return nil, err
	}
	s, err := a.anchor(ctx, w)
	return s, a.versionConflict(ctx, err, w)
}

// versionConflict turns the ledger's refusal of w's version number into ErrVersionConflict when
// another version of the record was written meanwhile.
func (a *Agent) versionConflict(ctx context.Context, err error, w *write) error {
	var te *client.TxError
	if w.version > 1 && errors.As(err, &te) && te.Code() == codes.Invalid {
		if now, rerr := a.node.Record(ctx, w.id); rerr == nil && now.Version != w.version-1 {
			return ErrVersionConflict
		}
	}
	return err
}

// planUpdate plans res as the next version of record id (see UpdateResourceIf).
func (a *Agent) planUpdate(ctx context.Context, id string, res *fhir.Resource, ifVersion uint32) (*write, error) {
	patient, err := a.PatientAccount(res.Patient)
	if err != nil {
		return nil, err
	}
	prev, err := a.node.Record(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
	if prev.Status == records.StatusErased || !a.isType(ctx, prev, res.Type) || !a.holdsKey(prev) {
		return nil, ErrNotFound
	}
	if prev.Patient != patient {
		return nil, ErrOtherPatient
	}
	if ifVersion != 0 && ifVersion != prev.Version {
		return nil, ErrVersionMismatch
	}
	// A new version keeps its record's category (the chain refuses another).
	category := prev.Category
	if prev.Category != res.Category {
		if category, err = a.CategoryTag(ctx, patient, res.Category); err != nil {
			return nil, err
		}
	}
	return &write{res: res, patient: prev.Patient, category: category, resourceType: prev.ResourceType, id: id, version: prev.Version + 1}, nil
}

// isType reports whether rec is of resourceType (named on the ledger by the patient's tag).
func (a *Agent) isType(ctx context.Context, rec *records.Record, resourceType string) bool {
	if rec.ResourceType == resourceType {
		return true
	}
	tag, err := a.ResourceTypeTag(ctx, rec.Patient, resourceType)
	return err == nil && rec.ResourceType == tag
}

// holdsKey reports whether this account holds rec's key (it is the record's patient or author):
// it knows the record exists and whose it is.
func (a *Agent) holdsKey(rec *records.Record) bool { return rec.KeyFor(a.Address()) != nil }

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// anchor seals w's resource for the patient and this account, wraps its data key for the
// network key, uploads the ciphertext and anchors it, then waits for its copies.
func (a *Agent) anchor(ctx context.Context, w *write) (*Stored, error) {
	m, err := a.prepare(ctx, w)
	if err != nil {
		return nil, err
	}
	result, err := a.signer.Send(ctx, records.TypeAnchor, m)
	if err != nil {
		return nil, err
	}
	if err := a.confirmCopies(ctx, m.ID, m.CiphertextHash); err != nil {
		return nil, err
	}
	a.index.add(m.ID, m.Version, m.CiphertextHash, w.res.JSON)
	return &Stored{Anchor: m, Resource: w.res, Height: result.Height, TxHash: result.Hash}, nil
}

// prepare seals w's resource for the patient and this account, wraps its data key for the
// network key and uploads the ciphertext: what is left is to anchor it.
func (a *Agent) prepare(ctx context.Context, w *write) (*records.Anchor, error) {
	sealCtx := records.SealContext(a.signer.ChainID, w.id, w.version)
	netKey, err := a.networkKey(ctx, false)
	if err != nil {
		return nil, err
	}
	rs, err := a.node.Recipients(ctx, w.patient, a.Address(), w.category)
	if client.IsNotFound(err) { // the node answers an author without a write grant as for no patient
		return nil, fmt.Errorf("%w: %s category %s", ErrNoWriteGrant, w.patient, w.res.Category)
	}
	if err != nil {
		return nil, fmt.Errorf("recipients: %w", err)
	}
	recips := make([]seal.Recipient, len(rs))
	for i, r := range rs {
		if err := a.checkRecipientKey(ctx, r.Address, r.EncryptionKey); err != nil {
			return nil, err
		}
		recips[i] = seal.Recipient{ID: string(r.Address), PublicKey: r.EncryptionKey}
	}
	s, err := seal.Seal(w.res.JSON, sealCtx, recips)
	if err != nil {
		return nil, err
	}
	network, err := netkey.Wrap(&netKey.Public, s.DataKey, sealCtx)
	if err != nil {
		return nil, err
	}
	if _, err := a.node.PutBlob(ctx, a.signer, s.Ciphertext); err != nil {
		return nil, fmt.Errorf("upload ciphertext: %w", err)
	}
	m := &records.Anchor{ID: w.id, Version: w.version, Patient: w.patient, ResourceType: w.resourceType, Category: w.category,
		Purpose: a.cfg.Purpose, CiphertextHash: s.Hash[:], Commitment: s.Commitment[:], Size: int64(len(s.Ciphertext)), Network: network}
	for _, k := range s.Keys {
		m.Keys = append(m.Keys, records.WrappedKey{Recipient: tx.Address(k.Recipient), Wrapped: k.Wrapped})
	}
	m.Signature = ed25519.Sign(a.signer.Key.Signing, records.ProvenanceStatement(a.signer.ChainID, m))
	return m, nil
}

// Plain is a decrypted record.
type Plain struct {
	Record *records.Record
	JSON   []byte
}

// Read fetches and decrypts record id. Within a session (a granted access event of this agent
// that covers the record and has not expired) it reads at once; otherwise it requests access
// first. A record that is absent, erased or denied is ErrNotFound, and all three take the same
// path: a committed access request (the chain records a denied event for an absent record too),
// then the answer; only the patient and the author of an erased record are told ErrGone. An id the node does not know is asked about under probePatient.
func (a *Agent) Read(ctx context.Context, id string) (*Plain, error) {
	return a.ReadVersion(ctx, id, 0)
}

// ReadVersion is Read of one version of record id (0 for the latest): a FHIR vread. A version
// the record does not have is ErrNotFound; an erased record is ErrGone for its patient and
// author.
func (a *Agent) ReadVersion(ctx context.Context, id string, version uint32) (*Plain, error) {
	patient := a.probePatient(ctx)
	rec, err := a.node.Record(ctx, id)
	switch {
	case err == nil:
		patient = rec.Patient
		if rec.Status == records.StatusErased && (rec.Patient == a.Address() || rec.Author == a.Address()) {
			return nil, ErrGone
		}
		if version > rec.Version {
			return nil, ErrNotFound
		}
		if ev := a.sess.find(rec, a.cfg.Purpose, time.Now()); ev != nil {
			p, err := a.openVersion(ctx, rec, version, ev.ID)
			if !errors.Is(err, ErrNotFound) {
				return p, err
			}
			a.sess.drop(ev) // refused: ask on chain again, where a denial is recorded
		}
	case !client.IsNotFound(err):
		return nil, err
	}
	ev, err := a.Access(ctx, records.Access{Patient: patient, Record: id, Purpose: a.cfg.Purpose})
	var te *client.TxError
	if errors.As(err, &te) { // e.g. an id that is not a record id at all
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if ev.Outcome != records.Granted {
		return nil, ErrNotFound
	}
	rec, err = a.node.Record(ctx, id) // the version the access event covers
	if err != nil {
		return nil, notFound(err)
	}
	return a.openVersion(ctx, rec, version, ev.ID)
}

// openVersion opens version (0: the latest) of the record whose latest version is latest.
func (a *Agent) openVersion(ctx context.Context, latest *records.Record, version uint32, access uint64) (*Plain, error) {
	if version == 0 || version == latest.Version {
		return a.open(ctx, latest, access)
	}
	history, err := a.node.History(ctx, latest.ID)
	if err != nil {
		return nil, notFound(err)
	}
	for i := range history {
		if history[i].Version == version {
			return a.open(ctx, &history[i], access)
		}
	}
	return nil, ErrNotFound
}

// probePatient is the patient named by an access request for a record id the node does not
// know: this account when it is a patient, else the directory's first patient (by FHIR id), else
// this account anyway (the chain then refuses the request in its block: the same wait, without
// an audit event). The account's role is looked up once.
func (a *Agent) probePatient(ctx context.Context) tx.Address {
	self := a.Address()
	if a.role(ctx) == identity.RolePatient {
		return self
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	first := ""
	for id := range a.cfg.Patients {
		if first == "" || id < first {
			first = id
		}
	}
	if first != "" {
		return a.cfg.Patients[first]
	}
	return self
}

// Access submits an access request and returns its audit event.
func (a *Agent) Access(ctx context.Context, m records.Access) (*records.AccessEvent, error) {
	if m.Category != "" && m.Record == "" {
		var err error
		if m.Category, err = a.CategoryTag(ctx, m.Patient, m.Category); err != nil {
			return nil, err
		}
	}
	res, err := a.signer.Send(ctx, records.TypeAccess, m)
	if err != nil {
		return nil, err
	}
	id, err := strconv.ParseUint(client.Event(res, "records.access", "id"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("access result without an event id")
	}
	ev, err := a.node.AccessEvent(ctx, m.Patient, id)
	if err == nil {
		a.sess.keep(ev, time.Now())
		a.audit(ev)
	}
	return ev, err
}

// AuditSink takes audit events to keep beside the ledger's (atna.Forwarder).
type AuditSink interface {
	Send(atna.Event)
}

// audit hands an access event of this account to Config.Audit, as a FHIR AuditEvent about the
// patient's FHIR id in the directory (its account address if it has none).
func (a *Agent) audit(ev *records.AccessEvent) {
	if a.cfg.Audit == nil {
		return
	}
	fhirID := string(ev.Patient)
	a.mu.RLock()
	for id, acct := range a.cfg.Patients {
		if acct == ev.Patient && (fhirID == string(ev.Patient) || id < fhirID) {
			fhirID = id
		}
	}
	a.mu.RUnlock()
	raw, err := AuditEventResource(ev, fhirID)
	if err != nil {
		return
	}
	a.cfg.Audit.Send(atna.Event{Time: ev.Time, Denied: ev.Outcome != records.Granted, JSON: raw})
}

// open fetches a record's ciphertext with access event accessID and decrypts it.
func (a *Agent) open(ctx context.Context, rec *records.Record, accessID uint64) (*Plain, error) {
	if err := a.checkRecord(ctx, rec); err != nil {
		return nil, err
	}
	if a.inlineRead(ctx, rec) {
		// A small record read with a released key: the agent's node sends the ciphertext with
		// its share, so the read is one exchange with that node.
		key, ct, err := a.releaseWithCiphertext(ctx, rec, accessID)
		if err != nil {
			return nil, err
		}
		if ct == nil {
			if ct, err = a.node.GetBlob(ctx, a.signer, rec.CiphertextHash, rec.Patient, accessID); err != nil {
				return nil, notFound(err)
			}
		}
		return a.decrypt(rec, ct, key)
	}
	// The ciphertext and the key come from different nodes: ask for both at once.
	var (
		ct      []byte
		blobErr error
		fetched = make(chan struct{})
	)
	go func() {
		defer close(fetched)
		ct, blobErr = a.node.GetBlob(ctx, a.signer, rec.CiphertextHash, rec.Patient, accessID)
	}()
	key, err := a.dataKey(ctx, rec, accessID)
	<-fetched
	if err != nil {
		return nil, err
	}
	if blobErr != nil {
		return nil, notFound(blobErr)
	}
	return a.decrypt(rec, ct, key)
}

// decrypt opens a record's ciphertext with its data key (and indexes it for searches).
func (a *Agent) decrypt(rec *records.Record, ct, key []byte) (*Plain, error) {
	sealCtx := records.SealContext(a.signer.ChainID, rec.ID, rec.Version)
	var commitment [32]byte
	copy(commitment[:], rec.Commitment)
	plain, err := seal.Open(ct, sealCtx, key, commitment)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", rec.ID, err)
	}
	a.index.add(rec.ID, rec.Version, rec.CiphertextHash, plain)
	return &Plain{Record: rec, JSON: plain}, nil
}

// Search returns all of the patient's active records of resourceType (all types if empty) that
// this account may read and filter (nil: none) passes, page by page (see SearchPage).
func (a *Agent) Search(ctx context.Context, patient tx.Address, resourceType string, filter *fhir.Search) ([]Plain, error) {
	var out []Plain
	cursor := ""
	for {
		page, next, err := a.SearchPage(ctx, patient, resourceType, cursor, MaxSearchCount, filter)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

// Bounds of one page of a search.
const (
	DefaultSearchCount = app.DefaultPageLimit
	MaxSearchCount     = app.MaxPageLimit
	// MaxSearchBytes bounds the ciphertext one page decrypts (at least one record is always
	// included), so a page of large records does not hold count x 4 MiB in memory.
	MaxSearchBytes = 4 * fhir.MaxResourceBytes
	// maxSearchScan bounds the records one page examines to find its matches.
	maxSearchScan = 10 * app.MaxPageLimit
)

// SearchPage returns one page of the patient's active records of resourceType (all types if
// empty) that this account may read: it examines the patient's records after cursor ("" for the
// first page) until count (1..MaxSearchCount) match or MaxSearchBytes of them are chosen, asks
// access once per category among them (in parallel: one block), and leaves denied categories
// out. It returns the cursor of the next page, "" after the last. A filter (nil for none) picks
// records by id and time before anything is decrypted, and by content after: a page may then
// hold fewer than count records although more follow.
func (a *Agent) SearchPage(ctx context.Context, patient tx.Address, resourceType, cursor string, count int, filter *fhir.Search) ([]Plain, string, error) {
	count = min(max(count, 1), MaxSearchCount)
	var chosen []records.Record
	var size int64
	next, scanned := cursor, 0
	typeTag, err := a.ResourceTypeTag(ctx, patient, resourceType)
	if errors.Is(err, ErrNoTagKey) { // no records, or none this account may know of
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
scan:
	for scanned < maxSearchScan {
		page, nodeNext, err := a.node.PatientRecordsPage(ctx, patient, next, min(max(count, 100), MaxSearchCount))
		if err != nil {
			return nil, "", notFound(err)
		}
		for i := range page {
			rec := &page[i]
			if rec.Status == records.StatusActive && (resourceType == "" || rec.ResourceType == resourceType || rec.ResourceType == typeTag) &&
				(filter == nil || filter.MatchesMeta(rec.ID, rec.CreatedAt) && !a.index.excludes(rec, filter)) {
				if len(chosen) == count || (len(chosen) > 0 && size+rec.Size > MaxSearchBytes) {
					break scan // this record starts the next page
				}
				chosen, size = append(chosen, *rec), size+rec.Size
			}
			next = rec.ID // the records list's cursor is the last record id
			scanned++
		}
		if nodeNext == "" {
			next = ""
			break
		}
		next = nodeNext
	}

	out, err := a.openChosen(ctx, patient, chosen, filter)
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// openChosen asks access to the categories of chosen (one request per category, unless a
// session is open) and opens the granted records, in chosen's order; denied categories and
// records gone meanwhile are left out, and so is what filter (nil: none) rejects.
func (a *Agent) openChosen(ctx context.Context, patient tx.Address, chosen []records.Record, filter *fhir.Search) ([]Plain, error) {
	// One access request per category, concurrently (the signer admits them in nonce order
	// and they share a block).
	events := map[string]*records.AccessEvent{}
	for i := range chosen {
		events[chosen[i].Category] = a.sess.category(patient, chosen[i].Category, a.cfg.Purpose, time.Now())
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	asking := 0
	for _, ev := range events {
		if ev == nil {
			asking++
		}
	}
	report(ctx, StepFound, fmt.Sprintf("Found %s in %s.", count(len(chosen), "record"), count(len(events), "category")))
	if asking > 0 {
		report(ctx, StepAsking, fmt.Sprintf("Asking the ledger for access to %s (%d already open)…", count(asking, "category"), len(events)-asking))
	}
	if asking > 0 && a.cfg.Trust != nil {
		// While the access requests wait for their block, verify the anchors the reads will
		// rely on (open finds them verified; one that fails is reported there).
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.verifyAnchors(ctx, chosen)
		}()
	}
	for cat, ev := range events {
		if ev != nil {
			continue // a session
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev, err := a.Access(ctx, records.Access{Patient: patient, Category: cat, Purpose: a.cfg.Purpose})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			events[cat] = ev
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if asking > 0 {
		granted, height := 0, int64(0)
		for _, ev := range events {
			if ev != nil && ev.Outcome == records.Granted {
				granted++
			}
			if ev != nil {
				height = max(height, ev.Height)
			}
		}
		report(ctx, StepCommitted, fmt.Sprintf("The requests are on the ledger (block %d): %d of %s granted.", height, granted, count(len(events), "category")))
	}
	// Open the granted records together (keys released in batches, ciphertexts fetched
	// openInFlight at once) and keep them in the page's order.
	var granted []*records.Record
	var access []uint64
	for i := range chosen {
		if ev := events[chosen[i].Category]; ev != nil && ev.Outcome == records.Granted {
			granted, access = append(granted, &chosen[i]), append(access, ev.ID)
		}
	}
	opened, errs := a.openAll(ctx, granted, access)
	var out []Plain
	for i, p := range opened {
		if errors.Is(errs[i], ErrNotFound) {
			a.sess.drop(events[granted[i].Category]) // if it was a session, the next search asks again
			continue
		}
		if errs[i] != nil {
			return nil, errs[i]
		}
		if filter != nil && !filter.Matches(p.JSON) {
			continue
		}
		out = append(out, *p)
	}
	report(ctx, StepOpened, fmt.Sprintf("Opened %s (keys released by the network's key holders, ciphertexts checked).", count(len(out), "record")))
	return out, nil
}

// openInFlight bounds the records one search page opens at once.
const openInFlight = 8

// EraseRecord erases record id of resourceType for its patient. A record that is absent, of
// another type, or not this account's to erase (it is neither the patient nor a guardian) is
// ErrNotFound, alike, and so is the chain's refusal: erasing says nothing about a record that is
// not the account's.
func (a *Agent) EraseRecord(ctx context.Context, resourceType, id string) (*records.Receipt, error) {
	rec, err := a.node.Record(ctx, id)
	if err != nil && !client.IsNotFound(err) {
		return nil, err
	}
	// Every answer reads two things: the record, then the account it would be erased for (this
	// one when there is no such record), so the refusals take the same time.
	owner := a.Address()
	if err == nil {
		owner = rec.Patient
	}
	acc, _, aerr := a.node.Account(ctx, owner, false)
	if aerr != nil && !client.IsNotFound(aerr) {
		return nil, aerr
	}
	if err != nil || aerr != nil || !a.isType(ctx, rec, resourceType) ||
		(rec.Patient != a.Address() && !acc.HasGuardian(a.Address())) {
		return nil, ErrNotFound
	}
	receipt, err := a.Erase(ctx, rec.Patient, rec.ID)
	var te *client.TxError
	if errors.As(err, &te) && (te.Code() == codes.Unauthorized || te.Code() == codes.NotFound) {
		return nil, ErrNotFound
	}
	return receipt, err
}

// Erase erases one record, or all of the patient's records when id is empty. Only the patient's
// (or a guardian's) agent may.
func (a *Agent) Erase(ctx context.Context, patient tx.Address, id string) (*records.Receipt, error) {
	m := records.Erase{Patient: patient, ID: id, All: id == ""}
	if patient == a.Address() {
		m.Patient = ""
	}
	res, err := a.signer.Send(ctx, records.TypeErase, m)
	if err != nil {
		return nil, err
	}
	return &records.Receipt{Height: res.Height, TxHash: res.Hash}, nil
}

// notFound maps the API's 404 to ErrNotFound.
func notFound(err error) error {
	if client.IsNotFound(err) {
		return ErrNotFound
	}
	return err
}
