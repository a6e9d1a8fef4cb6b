package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/medchain/medchain/fhir"
)

// Bulk Data export (FHIR Bulk Data Access 2.0, async pattern): GET /fhir/Patient/$export (every
// patient of the directory) or /fhir/Group/{id}/$export (Group "all": the directory; "registered":
// the patients this agent registered) with Prefer: respond-async starts a job and answers 202
// with its status URL (/fhir/$export-status?job=<id>); GET on it answers 202 with X-Progress
// until the job ends, then 200 with the manifest; DELETE cancels. The NDJSON files, one per
// resource type (/fhir/$export-file?name=<job>.<Type>.ndjson), are held in the agent's memory
// only, served to the job's owner (the same SMART client and patient, or the development token)
// for ExportTTL after the job ends. The job reads every resource as the account, with the
// ledger's access requests (the audit trail), and keeps only what the caller's scopes reach.

// Export limits.
const (
	MaxExportJobs          = 4         // jobs running or holding files at once
	MaxExportJobsPerCaller = 2         // of them, one caller's (SMART client and patient, or the development token)
	MaxExportBytes         = 256 << 20 // NDJSON bytes one job may hold
	ExportTTL              = time.Hour // how long a finished job's files stay
)

type exportJob struct {
	id, owner, request string
	started            time.Time
	cancel             context.CancelFunc

	mu       sync.Mutex
	done     bool
	finished time.Time
	failure  string
	progress string
	files    map[string]*bytes.Buffer // by resource type
	counts   map[string]int
	size     int
}

type exportJobs struct {
	mu   sync.Mutex
	jobs map[string]*exportJob
}

// ownerOf names who may follow a job: the SMART client, or "" for the development token.
func ownerOf(ctx context.Context) string {
	if g := grantOf(ctx); g != nil {
		return "client:" + g.ClientID + "/" + g.Patient
	}
	return ""
}

// exportPatients starts an export of every patient of the directory.
func (f *Facade) exportPatients(w http.ResponseWriter, r *http.Request) {
	f.startExport(w, r, f.agent.Directory())
}

// exportGroup starts an export of a Group's patients.
func (f *Facade) exportGroup(w http.ResponseWriter, r *http.Request) {
	dir := f.agent.Directory()
	switch r.PathValue("id") {
	case "all":
	case "registered":
		dir = slices.DeleteFunc(dir, func(e DirectoryEntry) bool { _, ok := f.agent.CustodialPatient(e.FHIRID); return !ok })
	default:
		writeOutcome(w, http.StatusNotFound, "not-found", "no such Group (this agent exports Group/all and Group/registered)")
		return
	}
	f.startExport(w, r, dir)
}

func (f *Facade) startExport(w http.ResponseWriter, r *http.Request, patients []DirectoryEntry) {
	if !strings.Contains(strings.ToLower(strings.Join(r.Header.Values("Prefer"), ",")), "respond-async") {
		writeOutcome(w, http.StatusBadRequest, "invalid", "a bulk export is asynchronous: send Prefer: respond-async")
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "_type" && k != "_since" && k != "_outputFormat" {
			writeOutcome(w, http.StatusBadRequest, "not-supported", "export parameter "+strconv.Quote(k)+" is not supported (_type, _since and _outputFormat are)")
			return
		}
	}
	if of := q.Get("_outputFormat"); of != "" && of != "application/fhir+ndjson" && of != "application/ndjson" && of != "ndjson" {
		writeOutcome(w, http.StatusBadRequest, "not-supported", "_outputFormat must be application/fhir+ndjson")
		return
	}
	var types []string
	if v := q.Get("_type"); v != "" {
		types = strings.Split(v, ",")
	}
	var since time.Time
	if v := q.Get("_since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeOutcome(w, http.StatusBadRequest, "invalid", "_since must be an instant, such as 2026-01-31T12:00:00Z")
			return
		}
		since = t
	}
	patients = slices.DeleteFunc(patients, func(e DirectoryEntry) bool { return !f.patientAllowed(r.Context(), e.FHIRID, anyType, 'r') })

	raw := make([]byte, 16)
	rand.Read(raw)
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context())) // outlives the request, keeps its grant
	job := &exportJob{id: hex.EncodeToString(raw), owner: ownerOf(r.Context()), request: baseURL(r) + strings.TrimPrefix(r.URL.RequestURI(), "/fhir"),
		started: time.Now(), cancel: cancel, files: map[string]*bytes.Buffer{}, counts: map[string]int{}}
	f.exports.mu.Lock()
	for id, j := range f.exports.jobs {
		if j.expired(time.Now()) {
			delete(f.exports.jobs, id)
		}
	}
	// A caller holds at most MaxExportJobsPerCaller jobs: a new one drops its oldest finished one.
	var mine []*exportJob
	for _, j := range f.exports.jobs {
		if j.owner == job.owner {
			mine = append(mine, j)
		}
	}
	if len(mine) >= MaxExportJobsPerCaller {
		slices.SortFunc(mine, func(a, b *exportJob) int { return a.started.Compare(b.started) })
		for _, j := range mine {
			if j.isDone() {
				delete(f.exports.jobs, j.id)
				mine = slices.DeleteFunc(mine, func(x *exportJob) bool { return x == j })
				break
			}
		}
	}
	full := len(f.exports.jobs) >= MaxExportJobs || len(mine) >= MaxExportJobsPerCaller
	if !full {
		f.exports.jobs[job.id] = job
	}
	f.exports.mu.Unlock()
	if full {
		cancel()
		w.Header().Set("Retry-After", "60")
		writeOutcome(w, http.StatusTooManyRequests, "throttled", "too many bulk exports at once; retry later")
		return
	}
	go f.runExport(ctx, job, patients, types, since)
	w.Header().Set("Content-Location", baseURL(r)+"/$export-status?job="+job.id)
	w.WriteHeader(http.StatusAccepted)
}

func (j *exportJob) isDone() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.done
}

func (j *exportJob) expired(now time.Time) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.done && now.Sub(j.finished) > ExportTTL
}

// exportPatientsInFlight bounds the patients one export reads at once: one patient's access
// requests commit while another's records are opened.
const exportPatientsInFlight = 4

// runExport reads every resource of the patients the caller may read into NDJSON, by type.
func (f *Facade) runExport(ctx context.Context, job *exportJob, patients []DirectoryEntry, types []string, since time.Time) {
	defer job.cancel()
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, exportPatientsInFlight)
		done  int
	)
	fail := func(err error) {
		job.mu.Lock()
		defer job.mu.Unlock()
		if job.failure == "" {
			job.failure = err.Error()
			job.cancel() // the other patients' reads stop
		}
	}
	job.mu.Lock()
	job.progress = fmt.Sprintf("0 of %d patients", len(patients))
	job.mu.Unlock()
	for _, p := range patients {
		if ctx.Err() != nil {
			break
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			found, err := f.agent.Search(ctx, p.Address, "", nil)
			switch {
			case errors.Is(err, ErrNotFound):
			case err != nil:
				fail(fmt.Errorf("patient %s: %w", p.FHIRID, err))
				return
			default:
				if err := job.add(ctx, f, p, found, types, since); err != nil {
					fail(err)
					return
				}
			}
			job.mu.Lock()
			done++
			job.progress = fmt.Sprintf("%d of %d patients", done, len(patients))
			job.mu.Unlock()
		}()
	}
	wg.Wait()
	job.mu.Lock()
	if job.failure == "" && ctx.Err() != nil {
		job.failure = "cancelled"
	}
	job.done, job.finished = true, time.Now()
	job.mu.Unlock()
	f.log.Info("bulk export finished", "job", job.id, "patients", len(patients), "failed", job.failure != "")
}

// add appends a patient's records the caller may read, of the types asked for, to the files.
func (j *exportJob) add(ctx context.Context, f *Facade, p DirectoryEntry, found []Plain, types []string, since time.Time) error {
	for i := range found {
		rec := &found[i]
		if rec.Record.CreatedAt.Before(since) || !f.permits(ctx, 'r', rec.Record) {
			continue
		}
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		if json.Unmarshal(rec.JSON, &head) != nil || len(types) > 0 && !slices.Contains(types, head.ResourceType) {
			continue
		}
		id := rec.Record.ID
		if head.ResourceType == "Patient" {
			id = p.FHIRID
		}
		out, err := fhir.WithServerFields(rec.JSON, id, strconv.FormatUint(uint64(rec.Record.Version), 10), instant(rec.Record.CreatedAt))
		if err != nil {
			return err
		}
		j.mu.Lock()
		if j.size+len(out)+1 > MaxExportBytes {
			j.mu.Unlock()
			return fmt.Errorf("the export is larger than %d MiB: export fewer types or patients at once (_type, Group)", MaxExportBytes>>20)
		}
		b := j.files[head.ResourceType]
		if b == nil {
			b = &bytes.Buffer{}
			j.files[head.ResourceType] = b
		}
		b.Write(out)
		b.WriteByte('\n')
		j.size += len(out) + 1
		j.counts[head.ResourceType]++
		j.mu.Unlock()
	}
	return nil
}

// job finds the caller's job of the request (its job parameter, or the job of its file's name,
// "<job>.<Type>.ndjson").
func (f *Facade) job(r *http.Request) *exportJob {
	id := r.URL.Query().Get("job")
	if id == "" {
		id, _, _ = strings.Cut(r.URL.Query().Get("name"), ".")
	}
	f.exports.mu.Lock()
	defer f.exports.mu.Unlock()
	j := f.exports.jobs[id]
	if j == nil || j.owner != ownerOf(r.Context()) || j.expired(time.Now()) {
		return nil
	}
	return j
}

// exportStatus answers 202 with progress while a job runs, then its manifest.
func (f *Facade) exportStatus(w http.ResponseWriter, r *http.Request) {
	j := f.job(r)
	if j == nil {
		writeOutcome(w, http.StatusNotFound, "not-found", "no such export job (finished jobs are kept for an hour)")
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.done {
		w.Header().Set("X-Progress", j.progress)
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusAccepted)
		return
	}
	type file struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count"`
	}
	m := struct {
		TransactionTime     string `json:"transactionTime"`
		Request             string `json:"request"`
		RequiresAccessToken bool   `json:"requiresAccessToken"`
		Output              []file `json:"output"`
		Error               []file `json:"error"`
	}{TransactionTime: instant(j.started), Request: j.request, RequiresAccessToken: true, Output: []file{}, Error: []file{}}
	types := make([]string, 0, len(j.files))
	for t := range j.files {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		m.Output = append(m.Output, file{t, baseURL(r) + "/$export-file?name=" + j.id + "." + t + ".ndjson", j.counts[t]})
	}
	if j.failure != "" {
		m.Error = append(m.Error, file{"OperationOutcome", baseURL(r) + "/$export-file?name=" + j.id + ".errors.ndjson", 1})
	}
	out, _ := json.Marshal(m)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(out)
}

// exportCancel cancels a job and drops its files.
func (f *Facade) exportCancel(w http.ResponseWriter, r *http.Request) {
	j := f.job(r)
	if j == nil {
		writeOutcome(w, http.StatusNotFound, "not-found", "no such export job")
		return
	}
	j.cancel()
	f.exports.mu.Lock()
	delete(f.exports.jobs, j.id)
	f.exports.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// exportFile serves one NDJSON file of a finished job.
func (f *Facade) exportFile(w http.ResponseWriter, r *http.Request) {
	j := f.job(r)
	_, name, _ := strings.Cut(r.URL.Query().Get("name"), ".")
	name, ok := strings.CutSuffix(name, ".ndjson")
	if j == nil || !ok {
		writeOutcome(w, http.StatusNotFound, "not-found", "no such export file")
		return
	}
	j.mu.Lock()
	var body []byte
	done := j.done
	switch {
	case !done:
	case name == "errors" && j.failure != "":
		body = append(OperationOutcome("error", "exception", j.failure), '\n')
	case j.files[name] != nil:
		body = j.files[name].Bytes() // never written again once the job is done
	}
	j.mu.Unlock() // not held while a slow client reads
	if !done || body == nil {
		writeOutcome(w, http.StatusNotFound, "not-found", "no such export file, or the export is still running")
		return
	}
	w.Header().Set("Content-Type", "application/fhir+ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(body)
}
