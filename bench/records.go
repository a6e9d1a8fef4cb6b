package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

// RecordsOptions control the records benchmark.
type RecordsOptions struct {
	Reads          int           // sequential authorized reads
	Requesters     int           // accounts sending access requests concurrently (demo accounts)
	PerRequester   int           // concurrent requests per account
	AccessDuration time.Duration // how long to send access requests
	Dir            string
}

// RecordsResult holds the records benchmark's figures.
type RecordsResult struct {
	Reads            int
	ReadP50, ReadP99 time.Duration
	// The same reads by an agent that verifies the anchor with the light client (Config.Trust).
	VerifiedP50, VerifiedP99 time.Duration
	Accesses                 int
	AccessPerSecond          float64
	AccessP50                time.Duration
	AccessP99                time.Duration
}

func (r RecordsResult) String() string {
	return fmt.Sprintf("authorized read end to end (access request -> commit -> ciphertext -> decrypt): %d reads, p50 %v, p99 %v\n"+
		"the same reads verifying the anchor against a light-client header: p50 %v, p99 %v\n"+
		"access requests: %d committed (each one audited) at %.0f/s, submit-to-commit p50 %v, p99 %v",
		r.Reads, r.ReadP50.Round(time.Millisecond), r.ReadP99.Round(time.Millisecond),
		r.VerifiedP50.Round(time.Millisecond), r.VerifiedP99.Round(time.Millisecond),
		r.Accesses, r.AccessPerSecond, r.AccessP50.Round(time.Millisecond), r.AccessP99.Round(time.Millisecond))
}

// Records starts a dev node with its demo data, times o.Reads sequential authorized reads of a
// demo record by the demo doctor's agent, then sends access requests from o.Requesters demo
// accounts (o.PerRequester in flight each) for o.AccessDuration and reports the sustained rate.
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
	recs, err := c.PatientRecords(ctx, patient)
	if err != nil || len(recs) == 0 {
		return res, fmt.Errorf("demo records: %v", err)
	}
	trust, err := client.NewTrust(n.Home, n.RPCAddr, n.ChainID)
	if err != nil {
		return res, err
	}
	defer trust.Close()
	verifying := agent.New(signers["doctor"], agent.Config{Patients: map[string]tx.Address{"example": patient}, Trust: trust})
	timeReads := func(a *agent.Agent) ([]time.Duration, error) {
		var reads []time.Duration
		for range o.Reads {
			start := time.Now()
			if _, err := a.Read(ctx, recs[0].ID); err != nil {
				return nil, fmt.Errorf("read: %w", err)
			}
			reads = append(reads, time.Since(start))
		}
		return reads, nil
	}
	reads, err := timeReads(doctor)
	if err != nil {
		return res, err
	}
	res.Reads, res.ReadP50, res.ReadP99 = len(reads), percentile(reads, 50), percentile(reads, 99)
	if reads, err = timeReads(verifying); err != nil {
		return res, err
	}
	res.VerifiedP50, res.VerifiedP99 = percentile(reads, 50), percentile(reads, 99)

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
					if _, err := s.Send(ctx, records.TypeAccess, records.Access{Patient: patient, Category: "vital-signs", Purpose: "TREAT"}); err != nil {
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

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
