package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

// RecordsOptions control the records benchmark.
type RecordsOptions struct {
	Reads          int           // sequential authorized reads
	ReadInflight   int           // concurrent facade reads for the throughput figure
	ReadDuration   time.Duration // how long to measure facade read throughput
	Requesters     int           // accounts sending access requests concurrently (demo accounts)
	PerRequester   int           // concurrent requests per account
	AccessDuration time.Duration // how long to send access requests
	Dir            string
}

// RecordsResult holds the records benchmark's figures.
type RecordsResult struct {
	Reads int
	// First reads by a grantee: an access request (one block), then the key released by the
	// network key's holders and the ciphertext fetched, at once.
	FirstP50, FirstP99 time.Duration
	// Reads through the FHIR facade inside the grantee's session (no transaction), by an agent
	// that verifies what it relies on with the light client.
	SessionP50, SessionP99 time.Duration
	// Facade reads per second inside a session, ReadInflight at once, each one a key release
	// and a ciphertext fetch logged by the node.
	FacadeReads     int
	Inflight        int
	FacadeReadsPerS float64
	BlockInterval   time.Duration // mean over the run, for the first-read target
	Accesses        int
	AccessPerSecond float64
	AccessP50       time.Duration
	AccessP99       time.Duration
	// Node API reads per second, ReadInflight at once, in the same run: an unsigned read of the
	// patient's account (public: one state read) and the patient's signed read of its settings
	// (authenticated in a session, scoped: the same account read and one more state read),
	// alternating in readRounds rounds of ReadDuration/(2*readRounds+1) each (medians, and the
	// median of the rounds' ratios, so that a noisy moment of the shared machine hits both
	// alike); then the patient's signed read of a record anchor (a larger value).
	UnsignedReadsPerS, SignedReadsPerS, SignedRatio, SignedRecordReadsPerS float64
}

// readRounds is how many alternating unsigned/signed rounds the read comparison runs.
const readRounds = 5

func (r RecordsResult) String() string {
	return fmt.Sprintf("first read by a grantee (access request -> commit -> key release + ciphertext -> decrypt): %d reads, p50 %v, p99 %v (block interval %v)\n"+
		"read inside the session through the FHIR facade (key release + ciphertext, light-client checked): p50 %v, p99 %v\n"+
		"facade reads inside a session: %d in %d flight, %.0f/s (each a logged key release and a logged ciphertext fetch)\n"+
		"access requests: %d committed (each one audited) at %.0f/s, submit-to-commit p50 %v, p99 %v\n"+
		"node API reads, medians of %d alternating rounds: unsigned (an account) %.0f/s, signed (the patient's settings) %.0f/s: signed at %.0f%% of unsigned (median of the rounds' ratios); signed record anchor reads %.0f/s",
		r.Reads, r.FirstP50.Round(time.Millisecond), r.FirstP99.Round(time.Millisecond), r.BlockInterval.Round(time.Millisecond),
		r.SessionP50.Round(100*time.Microsecond), r.SessionP99.Round(100*time.Microsecond),
		r.FacadeReads, r.Inflight, r.FacadeReadsPerS,
		r.Accesses, r.AccessPerSecond, r.AccessP50.Round(time.Millisecond), r.AccessP99.Round(time.Millisecond),
		readRounds, r.UnsignedReadsPerS, r.SignedReadsPerS, 100*r.SignedRatio, r.SignedRecordReadsPerS)
}

// readRate calls read from inflight goroutines for d and returns the successful calls per second.
func readRate(ctx context.Context, inflight int, d time.Duration, read func(context.Context) error) float64 {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var done atomic.Int64
	var wg sync.WaitGroup
	started := time.Now()
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pprof.SetGoroutineLabels(ctx) // a profile tells the client's work in each phase
			for ctx.Err() == nil {
				if read(ctx) == nil && ctx.Err() == nil {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(started).Seconds()
}

// Records starts a dev node with its demo data and a grant of it to the hospital, times o.Reads
// first reads by the hospital (each by a new agent: an access request, then key release and
// ciphertext), then o.Reads reads inside its sessions through the FHIR facade, then facade reads
// with o.ReadInflight in flight for o.ReadDuration; finally it sends access requests from
// o.Requesters demo accounts (o.PerRequester in flight each) for o.AccessDuration and reports
// the sustained rate.
func Records(ctx context.Context, o RecordsOptions) (RecordsResult, error) {
	var res RecordsResult
	n, kr, err := startDevNode(filepath.Join(o.Dir, "records"))
	if err != nil {
		return res, err
	}
	defer n.Stop()
	c := client.New(n.APIAddr)
	if err := c.WaitReady(ctx); err != nil {
		return res, err
	}
	names := []string{"doctor", "patient", "hospital", "pharmacy", "insurer", "manufacturer", "distributor", "regulator"}
	signers := map[string]*client.Signer{}
	for _, name := range names {
		k, err := kr.Get(name, "")
		if err != nil {
			return res, err
		}
		if signers[name], err = client.NewSigner(ctx, c, k); err != nil {
			return res, err
		}
	}
	patient := signers["patient"].Address()
	doctor := agent.New(signers["doctor"], agent.Config{Patients: map[string]tx.Address{"example": patient}})
	if _, err := agent.SeedDemo(ctx, agent.DemoSigners{Patient: signers["patient"], Doctor: signers["doctor"], Hospital: signers["hospital"]}, doctor); err != nil {
		return res, err
	}
	recs, err := signers["patient"].Reads().PatientRecords(ctx, patient)
	if err != nil || len(recs) == 0 {
		return res, fmt.Errorf("demo records: %v", err)
	}
	// The hospital is granted the demo records: it holds no wrapped key, so every read of its
	// agent takes the key release path.
	if _, err := signers["patient"].Send(ctx, consent.TypeGrant, consent.GrantMsg{Grantee: signers["hospital"].Address(),
		Categories: []string{consent.AllCategories}, Purposes: []string{"TREAT"}, Expiry: time.Now().Add(24 * time.Hour)}); err != nil {
		return res, err
	}
	trust, err := client.NewTrust(n.Home, n.APIAddr, n.ChainID)
	if err != nil {
		return res, err
	}
	defer trust.Close()
	cfg := agent.Config{Patients: map[string]tx.Address{"example": patient}}
	h0, t0, err := latest(ctx, c)
	if err != nil {
		return res, err
	}
	var first []time.Duration
	for i := range o.Reads {
		a := agent.New(signers["hospital"], cfg) // a new agent: no session yet
		start := time.Now()
		if _, err := a.Read(ctx, recs[i%len(recs)].ID); err != nil {
			return res, fmt.Errorf("first read: %w", err)
		}
		first = append(first, time.Since(start))
	}
	h1, t1, err := latest(ctx, c)
	if err != nil {
		return res, err
	}
	if h1 > h0 {
		res.BlockInterval = t1.Sub(t0) / time.Duration(h1-h0)
	}
	res.Reads, res.FirstP50, res.FirstP99 = len(first), percentile(first, 50), percentile(first, 99)

	cfg.Trust = trust
	hospital := agent.New(signers["hospital"], cfg)
	facade := httptest.NewServer(agent.NewFacade(hospital, benchToken, nil))
	defer facade.Close()
	get := func(hc *http.Client, rec *records.Record) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, facade.URL+"/fhir/"+rec.ResourceType+"/"+rec.ID, nil)
		req.Header.Set("Authorization", "Bearer "+benchToken)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("facade read: HTTP %d", resp.StatusCode)
		}
		return nil
	}
	for i := range recs { // open the sessions
		if err := get(http.DefaultClient, &recs[i]); err != nil {
			return res, err
		}
	}
	var inSession []time.Duration
	for i := range o.Reads {
		start := time.Now()
		if err := get(http.DefaultClient, &recs[i%len(recs)]); err != nil {
			return res, err
		}
		inSession = append(inSession, time.Since(start))
	}
	res.SessionP50, res.SessionP99 = percentile(inSession, 50), percentile(inSession, 99)

	readCtx, stopReads := context.WithTimeout(ctx, o.ReadDuration)
	defer stopReads()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.ReadInflight}}
	var done atomic.Int64
	var readers sync.WaitGroup
	started := time.Now()
	for w := range o.ReadInflight {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := w; readCtx.Err() == nil; i++ {
				if get(hc, &recs[i%len(recs)]) == nil && readCtx.Err() == nil {
					done.Add(1)
				}
			}
		}()
	}
	readers.Wait()
	res.FacadeReads, res.Inflight = int(done.Load()), o.ReadInflight
	res.FacadeReadsPerS = float64(done.Load()) / time.Since(started).Seconds()

	reads := signers["patient"].Reads()
	round := o.ReadDuration / (2*readRounds + 1)
	var unsigned, signed, ratios []float64
	unsignedRate := func() float64 {
		return readRate(pprof.WithLabels(ctx, pprof.Labels("reads", "unsigned")), o.ReadInflight, round, func(ctx context.Context) error {
			_, _, err := c.Account(ctx, patient, false)
			return err
		})
	}
	signedRate := func() float64 {
		return readRate(pprof.WithLabels(ctx, pprof.Labels("reads", "signed")), o.ReadInflight, round, func(ctx context.Context) error {
			_, err := reads.Settings(ctx, patient)
			return err
		})
	}
	for i := range readRounds {
		var u, s float64
		if i%2 == 0 { // alternate which goes first, so that a drifting load hits both alike
			u, s = unsignedRate(), signedRate()
		} else {
			s, u = signedRate(), unsignedRate()
		}
		unsigned, signed, ratios = append(unsigned, u), append(signed, s), append(ratios, s/max(u, 1))
	}
	res.UnsignedReadsPerS, res.SignedReadsPerS, res.SignedRatio = median(unsigned), median(signed), median(ratios)
	res.SignedRecordReadsPerS = readRate(ctx, o.ReadInflight, round, func(ctx context.Context) error {
		_, err := reads.Record(ctx, recs[0].ID)
		return err
	})

	// Access requests name the patient's tag of the category (the doctor, granted by the demo,
	// holds the patient's tag key).
	vitals, err := doctor.CategoryTag(ctx, patient, "vital-signs")
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.AccessDuration)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for _, name := range names[:min(o.Requesters, len(names))] {
		for range o.PerRequester {
			wg.Add(1)
			go func(s *client.Signer) {
				defer wg.Done()
				for ctx.Err() == nil {
					t0 := time.Now()
					if _, err := s.Send(ctx, records.TypeAccess, records.Access{Patient: patient, Category: vitals, Purpose: "TREAT"}); err != nil {
						continue
					}
					mu.Lock()
					lat = append(lat, time.Since(t0))
					mu.Unlock()
				}
			}(signers[name])
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	res.Accesses, res.AccessPerSecond = len(lat), float64(len(lat))/elapsed.Seconds()
	res.AccessP50, res.AccessP99 = percentile(lat, 50), percentile(lat, 99)
	return res, nil
}

// benchToken is the facade's bearer token in the benchmark.
const benchToken = "bench-token-0123456789abcdef0123456789"

// latest returns the node's latest height and its block time.
func latest(ctx context.Context, c *client.Client) (int64, time.Time, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return 0, time.Time{}, err
	}
	return st.LatestHeight, st.LatestBlockTime, nil
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// median is the median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
