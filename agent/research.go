package agent

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/research"
	"github.com/medchain/medchain/deid"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// Research at the edge (contracts/research, package deid). The patient's agent opts in, and for
// each round a study opens it de-identifies the patient's matching records itself, writes them
// as one record of the patient's (a FHIR Bundle, filed under the patient's tag of the round's
// contribution category, so that access to it is access to that contribution alone) and anchors
// the contribution; nothing identifying leaves the patient's agent. The study's agent reads the
// contributions (purpose HRESCH: the ledger allows it only while the round has k contributors
// who have not withdrawn) and assembles the dataset as FHIR NDJSON.

// ErrNothingToContribute says the patient has no record the study asks for.
var ErrNothingToContribute = errors.New("agent: the patient has no record this study asks for")

// ErrNotOptedIn says the patient's research consent does not cover the study (never given, or
// withdrawn): the agent contributes nothing.
var ErrNotOptedIn = errors.New("agent: the patient has not opted in to this study (or has withdrawn)")

// OptInResearch records patient's research consent to a study or to a topic (one of them).
func (a *Agent) OptInResearch(ctx context.Context, patient tx.Address, study, topic string) error {
	_, err := a.signer.Send(ctx, research.TypeOptIn, research.OptIn{Patient: a.other(patient), Study: study, Topic: topic})
	return err
}

// WithdrawResearch withdraws patient's research consent to a study or a topic.
func (a *Agent) WithdrawResearch(ctx context.Context, patient tx.Address, study, topic string) error {
	_, err := a.signer.Send(ctx, research.TypeWithdraw, research.Withdraw{Patient: a.other(patient), Study: study, Topic: topic})
	return err
}

// other is patient as a message names it: empty for the agent's own account.
func (a *Agent) other(patient tx.Address) tx.Address {
	if patient == a.Address() {
		return ""
	}
	return patient
}

// researchKey is the agent's research key (deid.ResearchKey of its signing seed): the patient's
// pseudonyms, date shifts and contributor tags derive from it.
func (a *Agent) researchKey() []byte { return deid.ResearchKey(a.signer.Key.Signing.Seed()) }

// ContributorTag is the patient's pseudonymous tag in a round of a study: unlinkable across
// rounds and studies without the patient's research key.
func ContributorTag(key []byte, study string, round int) []byte {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "contributor\n%s\n%d", study, round)
	return m.Sum(nil)
}

// Contributed is a contribution the agent anchored.
type Contributed struct {
	Study       string
	Round       int
	Record      string
	Resources   int
	Skipped     int // matching resources the de-identifier would not release
	DatasetHash []byte
	Height      int64
}

// Contribute de-identifies the agent's own patient's records that the study asks for and
// anchors them as a contribution to the study's current round. It refuses (ErrNotOptedIn) when
// the patient's research consent does not cover the study, and returns ErrNothingToContribute
// when no record matches.
func (a *Agent) Contribute(ctx context.Context, studyID string, now time.Time) (*Contributed, error) {
	patient := a.Address()
	s, err := a.node.Study(ctx, studyID)
	if err != nil {
		return nil, fmt.Errorf("agent: study %s: %w", studyID, notFound(err))
	}
	if s.Status != research.StatusApproved || s.Round == 0 {
		return nil, fmt.Errorf("agent: study %s has no extraction round open", s.ID)
	}
	mine, err := a.node.PatientResearch(ctx, patient)
	if err != nil {
		return nil, err
	}
	if !coveredBy(mine.Consents, s) {
		return nil, ErrNotOptedIn
	}
	var raws [][]byte
	for _, typ := range s.Request.Types {
		plains, err := a.Search(ctx, patient, typ, nil)
		if err != nil {
			return nil, fmt.Errorf("agent: the patient's %s records: %w", typ, err)
		}
		for _, p := range plains {
			if matches(&s.Request, typ, p.JSON) {
				raws = append(raws, p.JSON)
			}
		}
	}
	d := deid.New(a.researchKey(), s.ID, deid.Level(s.Request.Level), now)
	lines, skipped := DeidentifyAll(d, raws)
	if len(lines) == 0 {
		return nil, ErrNothingToContribute
	}
	bundle, err := contributionBundle(lines)
	if err != nil {
		return nil, err
	}
	res, err := fhir.Parse(bundle)
	if err != nil {
		return nil, fmt.Errorf("agent: the contribution's Bundle: %w", err)
	}
	w, err := a.planAddFor(ctx, res, patient, newID())
	if err != nil {
		return nil, err
	}
	if w.category, err = a.tagged(ctx, patient, research.ContributionCategory(s.ID, s.Round), consent.CategoryTag); err != nil {
		return nil, err
	}
	stored, err := a.anchor(ctx, w)
	if err != nil {
		return nil, err
	}
	hash := NDJSONHash(lines)
	out, err := a.signer.Send(ctx, research.TypeContribute, research.Contribute{Study: s.ID, Round: s.Round, Record: stored.Anchor.ID,
		Tag: ContributorTag(a.researchKey(), s.ID, s.Round), Resources: len(lines), DatasetHash: hash})
	if err != nil {
		return nil, fmt.Errorf("agent: anchor the contribution: %w", err)
	}
	return &Contributed{Study: s.ID, Round: s.Round, Record: stored.Anchor.ID, Resources: len(lines), Skipped: skipped, DatasetHash: hash, Height: out.Height}, nil
}

// coveredBy reports whether consents cover study s: its own (not withdrawn), else its topic's.
func coveredBy(consents []research.Consent, s *research.Study) bool {
	for _, c := range consents {
		if c.Study == s.ID {
			return !c.Withdrawn
		}
	}
	return slices.ContainsFunc(consents, func(c research.Consent) bool { return c.Topic == s.Topic && c.Study == "" && !c.Withdrawn })
}

// DeidentifyAll de-identifies resources on every core, keeping their order; it returns the
// released ones and how many were not released.
func DeidentifyAll(d *deid.Deidentifier, raws [][]byte) (lines [][]byte, skipped int) {
	out := make([][]byte, len(raws))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				if r, err := d.Resource(raws[i]); err == nil {
					out[i] = r
				}
			}
		})
	}
	for i := range raws {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, r := range out {
		if r == nil {
			skipped++
			continue
		}
		lines = append(lines, r)
	}
	return lines, skipped
}

// matches reports whether a resource falls under a study's request: its type, its main code,
// and its date within the request's period.
func matches(q *research.Request, typ string, raw []byte) bool {
	if !q.Matches(typ, mainCodes(raw)) {
		return false
	}
	if q.From == nil && q.To == nil {
		return true
	}
	t, ok := fhir.DateOf(typ, raw)
	return ok && (q.From == nil || !t.Before(*q.From)) && (q.To == nil || !t.After(*q.To))
}

// mainCodes are a resource's main codes as "system|code".
func mainCodes(raw []byte) []string {
	var doc map[string]struct {
		Coding []struct{ System, Code string } `json:"coding"`
	}
	json.Unmarshal(raw, &doc) // fields that are not concepts are left empty
	var out []string
	for _, f := range []string{"code", "vaccineCode", "medicationCodeableConcept"} {
		for _, c := range doc[f].Coding {
			out = append(out, c.System+"|"+c.Code)
		}
	}
	return out
}

// contributionBundle is a collection Bundle of de-identified resources.
func contributionBundle(lines [][]byte) ([]byte, error) {
	type entry struct {
		Resource json.RawMessage `json:"resource"`
	}
	b := struct {
		ResourceType string  `json:"resourceType"`
		Type         string  `json:"type"`
		Entry        []entry `json:"entry"`
	}{ResourceType: "Bundle", Type: "collection"}
	for _, l := range lines {
		b.Entry = append(b.Entry, entry{Resource: l})
	}
	return json.Marshal(b)
}

// NDJSONHash is the SHA-256 of resources as NDJSON lines (each line, then a newline).
func NDJSONHash(lines [][]byte) []byte {
	h := sha256.New()
	for _, l := range lines {
		h.Write(l)
		h.Write([]byte{'\n'})
	}
	return h.Sum(nil)
}

// Dataset is a study's assembled dataset of one round: NDJSON per resource type (Bulk Data
// format), from Contributions contributors.
type Dataset struct {
	Study         string            `json:"study"`
	Round         int               `json:"round"`
	Contributions int               `json:"contributions"`
	K             int               `json:"k"`
	Files         map[string][]byte `json:"-"`                  // resource type -> NDJSON
	Hash          []byte            `json:"hash"`               // DatasetHash(Files)
	Counts        map[string]int    `json:"count"`              // resources per type
	Rejected      []string          `json:"rejected,omitempty"` // contributions left out, and why
}

// ErrBelowK says a round has fewer contributors than the study's k: nothing is released.
var ErrBelowK = errors.New("agent: the round's cohort is below the study's k; nothing is released")

// StudyDataset assembles a round's dataset as the study's agent: every contribution that has
// not been withdrawn, read for research (the ledger audits each read to its patient), checked
// against the hash its contributor anchored, split into NDJSON per resource type. A round below
// the study's k is ErrBelowK (the ledger would refuse the reads anyway).
func (a *Agent) StudyDataset(ctx context.Context, studyID string, round int) (*Dataset, error) {
	s, err := a.node.Study(ctx, studyID)
	if err != nil {
		return nil, fmt.Errorf("agent: study %s: %w", studyID, notFound(err))
	}
	pub, err := a.node.StudyContributions(ctx, s.ID, round)
	if err != nil {
		return nil, err
	}
	live := map[string]research.Contribution{}
	for _, c := range pub {
		if !c.Withdrawn {
			live[hex.EncodeToString(c.Tag)] = c
		}
	}
	if len(live) < s.K() {
		return nil, fmt.Errorf("%w: round %d has %d contributors, k is %d", ErrBelowK, round, len(live), s.K())
	}
	srcs, err := a.node.StudySources(ctx, s.ID, round)
	if err != nil {
		return nil, err
	}
	sort.Slice(srcs, func(i, j int) bool { return bytes.Compare(srcs[i].Tag, srcs[j].Tag) < 0 })
	reader := a.WithPurpose(research.Purpose)
	ds := &Dataset{Study: s.ID, Round: round, K: s.K(), Files: map[string][]byte{}, Counts: map[string]int{}}
	for _, src := range srcs {
		c, ok := live[hex.EncodeToString(src.Tag)]
		if !ok {
			continue
		}
		lines, err := readContribution(ctx, reader, &s.Request, src, c)
		if err != nil && !errors.Is(err, errBadContribution) { // a transient failure (a node, a key release): once more
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Second):
			}
			lines, err = readContribution(ctx, reader, &s.Request, src, c)
		}
		if err != nil { // one bad contribution is left out, not the round
			ds.Rejected = append(ds.Rejected, fmt.Sprintf("%x: %v", src.Tag, err))
			continue
		}
		for _, l := range lines {
			var r struct{ ResourceType string }
			json.Unmarshal(l, &r)
			ds.Files[r.ResourceType] = append(append(ds.Files[r.ResourceType], l...), '\n')
			ds.Counts[r.ResourceType]++
		}
		ds.Contributions++
	}
	if ds.Contributions < s.K() {
		return nil, fmt.Errorf("%w: %d contributions could be read, k is %d (left out: %s)", ErrBelowK, ds.Contributions, s.K(), strings.Join(ds.Rejected, "; "))
	}
	ds.Hash = DatasetHash(ds.Files)
	return ds, nil
}

// errBadContribution marks a contribution that was read but does not check out.
var errBadContribution = errors.New("a bad contribution")

// readContribution reads one contribution for research and checks it: the hash its contributor
// anchored, and every resource valid FHIR of a type the study asked for.
func readContribution(ctx context.Context, reader *Agent, q *research.Request, src research.Source, c research.Contribution) ([][]byte, error) {
	p, err := reader.Read(ctx, src.Record)
	if err != nil {
		return nil, err
	}
	var b struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(p.JSON, &b); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadContribution, err)
	}
	lines := make([][]byte, len(b.Entry))
	for i, e := range b.Entry {
		var compact bytes.Buffer
		if err := json.Compact(&compact, e.Resource); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadContribution, err)
		}
		lines[i] = compact.Bytes()
	}
	if !bytes.Equal(NDJSONHash(lines), c.DatasetHash) {
		return nil, fmt.Errorf("%w: it does not match the hash its contributor anchored", errBadContribution)
	}
	for _, l := range lines {
		var r struct{ ResourceType string }
		if err := json.Unmarshal(l, &r); err != nil || !slices.Contains(q.Types, r.ResourceType) {
			return nil, fmt.Errorf("%w: it holds a resource of type %q, which the study did not ask for", errBadContribution, r.ResourceType)
		}
		if err := fhir.Validate(l); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadContribution, err)
		}
	}
	return lines, nil
}

// DatasetHash is a dataset's hash: SHA-256 over its files in resource-type order, each as its
// type, a newline, its SHA-256 in hex and a newline. Anyone holding the files recomputes it.
func DatasetHash(files map[string][]byte) []byte {
	types := make([]string, 0, len(files))
	for t := range files {
		types = append(types, t)
	}
	sort.Strings(types)
	h := sha256.New()
	for _, t := range types {
		f := sha256.Sum256(files[t])
		fmt.Fprintf(h, "%s\n%x\n", t, f)
	}
	return h.Sum(nil)
}

// Write writes the dataset to dir as Bulk Data NDJSON files (<Type>.ndjson, mode 0600) and a
// manifest.json naming them with the dataset's hash.
func (ds *Dataset) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	type output struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count"`
	}
	manifest := struct {
		Study         string   `json:"study"`
		Round         int      `json:"round"`
		Contributions int      `json:"contributions"`
		K             int      `json:"k"`
		Hash          string   `json:"dataset_hash"`
		Output        []output `json:"output"`
	}{ds.Study, ds.Round, ds.Contributions, ds.K, hex.EncodeToString(ds.Hash), nil}
	types := make([]string, 0, len(ds.Files))
	for t := range ds.Files {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		name := t + ".ndjson"
		if err := os.WriteFile(filepath.Join(dir, name), ds.Files[t], 0o600); err != nil {
			return err
		}
		manifest.Output = append(manifest.Output, output{Type: t, URL: name, Count: ds.Counts[t]})
	}
	raw, _ := json.MarshalIndent(manifest, "", "  ")
	return os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o600)
}

// DeclareDataset anchors the dataset the study analysed, by its hash.
func (a *Agent) DeclareDataset(ctx context.Context, ds *Dataset) (int64, error) {
	res, err := a.signer.Send(ctx, research.TypeDeclare, research.Declare{Study: ds.Study, Round: ds.Round, Hash: ds.Hash, Contributions: ds.Contributions})
	if err != nil {
		return 0, err
	}
	return res.Height, nil
}

// CellCounts counts a dataset's resources by main code ("system|code") and the number of
// distinct subjects (pseudonymous patients) behind each, and suppresses every cell with fewer
// than k subjects: an aggregate below k is not released. It returns the cells kept and how
// many were suppressed.
func (ds *Dataset) CellCounts() (map[string]int, int) {
	subjects := map[string]map[string]bool{}
	for _, f := range ds.Files {
		for l := range bytes.SplitSeq(bytes.TrimSpace(f), []byte{'\n'}) {
			var r struct {
				Subject, Patient struct{ Reference string }
			}
			json.Unmarshal(l, &r)
			who := r.Subject.Reference + r.Patient.Reference
			for _, c := range mainCodes(l) {
				if subjects[c] == nil {
					subjects[c] = map[string]bool{}
				}
				subjects[c][who] = true
			}
		}
	}
	out, suppressed := map[string]int{}, 0
	for c, who := range subjects {
		if len(who) < ds.K {
			suppressed++
			continue
		}
		out[c] = len(who)
	}
	return out, suppressed
}

// Custodian is the agent of a custodial patient this organization's agent holds the key of (the
// patient has not claimed its account): it acts as the patient, as the patient's own agent would.
func (a *Agent) Custodian(patient tx.Address) (*Agent, error) {
	if a.cfg.Custody == nil {
		return nil, ErrNoCustody
	}
	k, err := a.cfg.Custody.Key(patient)
	if err != nil {
		return nil, err
	}
	ps := &client.Signer{C: a.signer.C, ChainID: a.signer.ChainID, Key: k, Log: a.signer.Log}
	return New(ps, Config{Purpose: a.cfg.Purpose, ReleaseTimeout: a.cfg.ReleaseTimeout, MinCopies: a.cfg.MinCopies,
		CopiesWait: a.cfg.CopiesWait, Trust: a.cfg.Trust}), nil
}

// ContributeForCustody contributes to a study for every custodial patient whose research
// consent covers it (the custodial organization's agent extracting at the edge for the patients
// it holds): it returns the contributions made and, by patient, why others were not (not opted
// in, nothing matching, claimed, or an error).
func (a *Agent) ContributeForCustody(ctx context.Context, study string, now time.Time) ([]*Contributed, map[tx.Address]error) {
	var done []*Contributed
	skipped := map[tx.Address]error{}
	for _, p := range a.RegisteredPatients() {
		if p.Claimed {
			skipped[p.Address] = errors.New("the patient has claimed its account: its own agent contributes")
			continue
		}
		c, err := a.Custodian(p.Address)
		if err == nil {
			var made *Contributed
			if made, err = c.Contribute(ctx, study, now); err == nil {
				done = append(done, made)
				continue
			}
		}
		skipped[p.Address] = err
	}
	return done, skipped
}
