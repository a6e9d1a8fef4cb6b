// Package bench measures committed-transaction throughput and commit latency of a running
// CometBFT node: pre-signed txs are submitted by concurrent workers through CometBFT's
// in-process client, and each tx's latency runs from its submission to the NewBlock event of the
// block that holds it. The same routine runs against medchain and against CometBFT's kvstore.
package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	nm "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/rpc/client/local"
	"github.com/cometbft/cometbft/types"
)

// Result is one run's figures.
type Result struct {
	Name      string
	Txs       int
	Failed    int // txs committed with a non-zero code, or refused by CheckTx
	Blocks    int
	Elapsed   time.Duration // first submission to the commit of the last tx
	TPS       float64
	P50, P99  time.Duration
	MaxPerBlk int
	// CPUPerTx is the process's CPU time (user + system, every goroutine: submitters, node,
	// background work) from the first submission to the last commit, per committed tx. Both
	// sides of a comparison keep the cores about equally busy, so the ratio of their CPU per tx
	// is the ratio of their throughputs, and it names what a change saved per tx.
	CPUPerTx time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("%-10s %7d txs in %6.2fs: %8.0f tx/s committed, commit latency p50 %v p99 %v, %d blocks (max %d txs), %d failed, CPU %v/tx",
		r.Name, r.Txs, r.Elapsed.Seconds(), r.TPS, r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Blocks, r.MaxPerBlk, r.Failed, r.CPUPerTx.Round(time.Microsecond))
}

// Run submits txs to n with workers concurrent submitters and waits until all are committed
// (or refused), or ctx ends. Submitters keep at most window txs in flight (submitted, not yet
// committed): CometBFT silently drops a tx that finds the mempool full after the app's CheckTx,
// so a client must apply backpressure; window should stay below the mempool's size. ingress,
// if set, runs in the submitter's goroutine before each submission, as the node's API does
// (medchain: app.PreVerify).
func Run(ctx context.Context, name string, n *nm.Node, txs [][]byte, workers, window int, ingress func([]byte)) (Result, error) {
	return RunSpread(ctx, name, []Target{{Node: n, Ingress: ingress}}, txs, workers, window)
}

// Target is a node that takes submissions, with its ingress check (nil for none).
type Target struct {
	Node    *nm.Node
	Ingress func([]byte)
}

// RunSpread is Run against a network: submitter w sends to targets[w % len(targets)], as clients
// of several organizations would, and latency is measured at the first target's commits.
func RunSpread(ctx context.Context, name string, targets []Target, txs [][]byte, workers, window int) (Result, error) {
	n := targets[0].Node
	index := make(map[[32]byte]int, len(txs))
	for i, t := range txs {
		index[sha256.Sum256(t)] = i
	}
	sub, err := n.EventBus().Subscribe(ctx, "bench-"+name, types.EventQueryNewBlock, 10000)
	if err != nil {
		return Result{}, fmt.Errorf("subscribe to blocks: %w", err)
	}
	defer n.EventBus().UnsubscribeAll(context.Background(), "bench-"+name)

	submitted := make([]atomic.Int64, len(txs)) // unix nanos
	var refused, committed atomic.Int64
	clients := make([]*local.Local, len(targets))
	for i, t := range targets {
		clients[i] = local.New(t.Node)
	}
	start, startCPU := time.Now(), processCPU()
	var wg sync.WaitGroup
	next := atomic.Int64{}
	submitErr := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		c, ingress := clients[w%len(targets)], targets[w%len(targets)].Ingress
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(txs) || ctx.Err() != nil {
					return
				}
				for int64(i)-committed.Load()-refused.Load() >= int64(window) && ctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
				for {
					submitted[i].Store(time.Now().UnixNano())
					if ingress != nil {
						ingress(txs[i])
					}
					res, err := c.BroadcastTxSync(ctx, txs[i])
					if err != nil && strings.Contains(err.Error(), "mempool is full") {
						time.Sleep(2 * time.Millisecond)
						continue
					}
					if err != nil {
						submitErr <- fmt.Errorf("broadcast: %w", err)
						return
					}
					if res.Code != 0 {
						refused.Add(1)
					}
					break
				}
			}
		}()
	}

	lat := make([]time.Duration, 0, len(txs))
	r := Result{Name: name, Txs: len(txs)}
	var last time.Time
	for len(lat)+int(refused.Load()) < len(txs) {
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("%s: %d of %d txs committed before the deadline", name, len(lat), len(txs))
		case err := <-submitErr:
			return r, err
		case <-sub.Canceled():
			return r, fmt.Errorf("block subscription canceled: %v", sub.Err())
		case msg := <-sub.Out():
			now := time.Now()
			ev := msg.Data().(types.EventDataNewBlock)
			counted := 0
			for j, t := range ev.Block.Txs {
				i, ok := index[sha256.Sum256(t)]
				if !ok {
					continue
				}
				counted++
				lat = append(lat, now.Sub(time.Unix(0, submitted[i].Load())))
				if j < len(ev.ResultFinalizeBlock.TxResults) && ev.ResultFinalizeBlock.TxResults[j].Code != 0 {
					r.Failed++
				}
			}
			committed.Add(int64(counted))
			if counted > 0 {
				r.Blocks++
				r.MaxPerBlk = max(r.MaxPerBlk, counted)
				last = now
			}
		}
	}
	if len(lat) > 0 {
		r.CPUPerTx = (processCPU() - startCPU) / time.Duration(len(lat))
	}
	wg.Wait()
	r.Failed += int(refused.Load())
	r.Elapsed = last.Sub(start)
	if r.Elapsed > 0 {
		r.TPS = float64(len(lat)) / r.Elapsed.Seconds()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		r.P50, r.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r, nil
}

// Median returns the result with the median throughput (the upper one for an even count).
func Median(rs []Result) Result {
	if len(rs) == 0 {
		return Result{}
	}
	s := append([]Result(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].TPS < s[j].TPS })
	return s[len(s)/2]
}

// processCPU is the CPU time this process has used (user + system).
func processCPU() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// MedianCPU returns the median CPUPerTx of rs (the upper one for an even count).
func MedianCPU(rs []Result) time.Duration {
	if len(rs) == 0 {
		return 0
	}
	cpu := make([]time.Duration, len(rs))
	for i, r := range rs {
		cpu[i] = r.CPUPerTx
	}
	slices.Sort(cpu)
	return cpu[len(cpu)/2]
}
