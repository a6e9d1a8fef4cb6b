package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medchain/medchain/contracts/supply"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/tx"
)

// SupplyResult holds the supply benchmark's figures.
type SupplyResult struct {
	Commit          Result  // commission txs (PacksPerTx events each) through consensus
	Events          int     // EPCIS events committed
	EventsPerSecond float64 //
	Verifications   int
	VerifyPerSecond float64
	VerifyP50       time.Duration
	VerifyP99       time.Duration
}

// SupplyOptions control the supply benchmark.
type SupplyOptions struct {
	Txs            int           // commission txs
	PacksPerTx     int           // serials per commission
	VerifyWorkers  int           // concurrent HTTP clients
	VerifyDuration time.Duration // how long to verify
	Wrk            bool          // drive verification with wrk instead of Go clients
	Dir            string
}

const benchGTIN = "09506000134352"

// Supply starts a dev node, commits o.Txs commission transactions from the demo manufacturer
// (submitted in nonce order) and reports committed supply events per second; then it verifies
// random commissioned packs over HTTP (GET /v1/supply/verify) with o.VerifyWorkers keep-alive
// clients for o.VerifyDuration and reports verifications per second and latency.
func Supply(ctx context.Context, o SupplyOptions) (SupplyResult, error) {
	var res SupplyResult
	n, kr, err := startDevNode(filepath.Join(o.Dir, "supply"))
	if err != nil {
		return res, err
	}
	defer n.Stop()
	mfr, err := kr.Get("manufacturer", "")
	if err != nil {
		return res, err
	}
	txs := make([][]byte, 0, o.Txs+1)
	sign := func(nonce uint64, typ string, msg any) error {
		raw, err := tx.Sign(mfr.Signing, n.ChainID, mfr.Address, nonce, typ, msg)
		txs = append(txs, raw)
		return err
	}
	if err := sign(0, supply.TypeRegisterProduct, supply.RegisterProduct{GTIN: benchGTIN, Name: "Bench product", MinDeciC: 20, MaxDeciC: 80}); err != nil {
		return res, err
	}
	var serials []string
	for i := 0; i < o.Txs; i++ {
		batch := make([]string, o.PacksPerTx)
		for j := range batch {
			batch[j] = fmt.Sprintf("B%07dS%04d", i, j)
		}
		serials = append(serials, batch...)
		if err := sign(uint64(i+1), supply.TypeCommission, supply.Commission{GTIN: benchGTIN, Lot: "BENCHLOT", Expiry: "2035-12-31", Serials: batch}); err != nil {
			return res, err
		}
	}
	// One submitter keeps nonce order; CheckTx is serial in CometBFT anyway.
	if res.Commit, err = Run(ctx, "supply", n.Comet, txs, 1, 5000, n.App.PreVerify); err != nil {
		return res, err
	}
	if res.Commit.Failed > 0 {
		return res, fmt.Errorf("%d supply txs failed", res.Commit.Failed)
	}
	res.Events = o.Txs * o.PacksPerTx
	res.EventsPerSecond = float64(res.Events) / res.Commit.Elapsed.Seconds()

	if o.Wrk {
		res.VerifyPerSecond, res.VerifyP50, res.VerifyP99, res.Verifications, err = wrkVerify(ctx, o.Dir, n.APIAddr, o)
		return res, err
	}
	// Verification load over HTTP.
	base := "http://" + n.APIAddr + "/v1/supply/verify?code="
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.VerifyWorkers}}
	deadline := time.Now().Add(o.VerifyDuration)
	var mu sync.Mutex
	var lat []time.Duration
	var bad atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < o.VerifyWorkers; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			var mine []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				code := url.QueryEscape("(01)" + benchGTIN + "(21)" + serials[rng.IntN(len(serials))])
				t0 := time.Now()
				resp, err := httpc.Get(base + code)
				if err != nil {
					bad.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					bad.Add(1)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(uint64(w))
	}
	wg.Wait()
	elapsed := time.Since(start)
	if bad.Load() > 0 {
		return res, fmt.Errorf("%d verifications failed", bad.Load())
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.Verifications = len(lat)
	res.VerifyPerSecond = float64(len(lat)) / elapsed.Seconds()
	if len(lat) > 0 {
		res.VerifyP50, res.VerifyP99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return res, nil
}

// startDevNode creates a dev home with the demo accounts in home, starts its node on free
// loopback ports and opens its keyring.
func startDevNode(home string) (*node.Node, *keyring.File, error) {
	ports, err := node.FreePorts()
	if err != nil {
		return nil, nil, err
	}
	if _, err := node.EnsureDev(home, ports); err != nil {
		return nil, nil, err
	}
	kr, err := keyring.OpenFile(node.KeyringDir(home))
	if err != nil {
		return nil, nil, err
	}
	n, err := node.Start(home, node.Options{Log: node.NewLogger("error")})
	return n, kr, err
}
