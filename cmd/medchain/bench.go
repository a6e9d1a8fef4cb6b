package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/bench"
)

func benchCmd() *cobra.Command {
	var o bench.Options
	var timeout time.Duration
	var cpuProfile string
	var rounds, validators int
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure committed tx/s and commit latency: medchain vs CometBFT's kvstore, same settings",
		Long: `Starts a fresh single-validator medchain node, submits --txs pre-signed identity registrations
at full speed, then does the same against CometBFT's kvstore example app (same CometBFT settings,
same tx size) as the consensus engine's ceiling on this machine, and prints both and their ratio.

With --validators N (N > 1) each round runs the single node and then a fresh network of N
validators in this process (separate homes, loopback P2P; submitters spread over the nodes,
latency measured at node 0), and prints the network's throughput and its ratio to the single
node's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "benchmark: %d txs per run, %d submitters, %d CPUs, %s\n", o.Txs, o.Workers, runtime.NumCPU(), runtime.Version())
			stop, err := startProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			if validators > 1 {
				return benchNetwork(ctx, out, o, rounds, validators)
			}
			var meds, kvs []bench.Result
			for i := 0; i < rounds; i++ {
				med, kv, err := bench.Compare(ctx, o)
				if err != nil {
					return err
				}
				for _, r := range []bench.Result{med, kv} {
					if r.Name != "" {
						fmt.Fprintf(out, "round %d: %s\n", i+1, r)
					}
				}
				if med.Failed > 0 {
					return fmt.Errorf("%d medchain txs failed", med.Failed)
				}
				meds, kvs = append(meds, med), append(kvs, kv)
			}
			med, kv := bench.Median(meds), bench.Median(kvs)
			if kv.TPS > 0 && med.TPS > 0 {
				fmt.Fprintf(out, "median of %d rounds: medchain %.0f tx/s (p50 %v, p99 %v), kvstore %.0f tx/s (p50 %v, p99 %v): medchain / kvstore = %.0f%%\n",
					rounds, med.TPS, med.P50.Round(time.Millisecond), med.P99.Round(time.Millisecond),
					kv.TPS, kv.P50.Round(time.Millisecond), kv.P99.Round(time.Millisecond), 100*med.TPS/kv.TPS)
				medCPU, kvCPU := bench.MedianCPU(meds), bench.MedianCPU(kvs)
				fmt.Fprintf(out, "median CPU per committed tx: medchain %v, kvstore %v: kvstore / medchain = %.0f%%\n",
					medCPU.Round(time.Microsecond), kvCPU.Round(time.Microsecond), 100*float64(kvCPU)/float64(medCPU))
			}
			return nil
		},
	}
	cmd.AddCommand(benchSupplyCmd(), benchRecordsCmd(), benchFHIRCmd())
	cmd.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (and block, mutex and allocation profiles beside it)")
	cmd.Flags().IntVar(&o.Txs, "txs", 100000, "transactions per run")
	cmd.Flags().IntVar(&rounds, "rounds", 1, "alternate medchain and kvstore runs this many times; report medians")
	cmd.Flags().IntVar(&o.Workers, "workers", 16, "concurrent submitters")
	cmd.Flags().IntVar(&o.Window, "window", 15000, "max txs in flight (keep below the mempool size, 20000)")
	cmd.Flags().IntVar(&validators, "validators", 1, "also run a network of this many validators and compare it with the single node")
	cmd.Flags().StringVar(&o.Only, "only", "", "run only medchain or kvstore (for profiling)")
	cmd.Flags().StringVar(&o.Dir, "dir", "", "scratch directory (default: a temp dir, removed after)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	return cmd
}

// benchNetwork alternates single-node and N-validator rounds and prints their medians.
func benchNetwork(ctx context.Context, out io.Writer, o bench.Options, rounds, validators int) error {
	var singles, nets []bench.Result
	for i := 0; i < rounds; i++ {
		single, network, err := bench.CompareNetwork(ctx, o, validators)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "round %d: %s\nround %d: %s\n", i+1, single, i+1, network)
		if single.Failed > 0 || network.Failed > 0 {
			return fmt.Errorf("%d + %d txs failed", single.Failed, network.Failed)
		}
		singles, nets = append(singles, single), append(nets, network)
	}
	single, network := bench.Median(singles), bench.Median(nets)
	fmt.Fprintf(out, "median of %d rounds: 1 node %.0f tx/s (p50 %v, p99 %v), %d validators %.0f tx/s (p50 %v, p99 %v): network / single node = %.0f%%\n",
		rounds, single.TPS, single.P50.Round(time.Millisecond), single.P99.Round(time.Millisecond), validators,
		network.TPS, network.P50.Round(time.Millisecond), network.P99.Round(time.Millisecond), 100*network.TPS/single.TPS)
	return nil
}

func benchSupplyCmd() *cobra.Command {
	o := bench.SupplyOptions{}
	cmd := &cobra.Command{
		Use:   "supply",
		Short: "Measure supply events committed per second and pack verifications per second over HTTP",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return benchRun(cmd, "supply", 10*time.Minute, func(ctx context.Context, dir string) error {
				o.Dir = dir
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "supply benchmark: %d commission txs x %d packs, then %d HTTP clients verifying for %s; %d CPUs\n",
					o.Txs, o.PacksPerTx, o.VerifyWorkers, o.VerifyDuration, runtime.NumCPU())
				r, err := bench.Supply(ctx, o)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "commit:  %d events (%d txs) in %.2fs: %.0f supply events/s committed (%.0f tx/s), commit latency p50 %v p99 %v\n",
					r.Events, r.Commit.Txs-1, r.Commit.Elapsed.Seconds(), r.EventsPerSecond, r.Commit.TPS,
					r.Commit.P50.Round(time.Millisecond), r.Commit.P99.Round(time.Millisecond))
				gen := "in-process Go clients"
				if o.Wrk {
					gen = "wrk, 1 thread"
				}
				fmt.Fprintf(out, "verify:  %d verifications (%s): %.0f/s, latency p50 %v p99 %v\n",
					r.Verifications, gen, r.VerifyPerSecond, r.VerifyP50.Round(time.Microsecond), r.VerifyP99.Round(time.Microsecond))
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&o.Txs, "txs", 1000, "commission transactions")
	cmd.Flags().IntVar(&o.PacksPerTx, "packs", 100, "packs per commission")
	cmd.Flags().IntVar(&o.VerifyWorkers, "clients", 32, "concurrent HTTP verify clients")
	cmd.Flags().DurationVar(&o.VerifyDuration, "duration", 10*time.Second, "verification load duration")
	cmd.Flags().BoolVar(&o.Wrk, "wrk", false, "drive verification with wrk (apt-get install wrk) instead of in-process Go clients")
	return cmd
}

// startProfile starts a CPU profile into path (nothing if empty) and returns its stop function.
func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	// Where goroutines wait and what they allocate, beside where they run: path.block (channel,
	// select, I/O waits), path.mutex (lock contention) and path.allocs (bytes and objects
	// allocated, by call site: what the garbage collector has to clean up).
	runtime.SetBlockProfileRate(int(time.Millisecond))
	runtime.SetMutexProfileFraction(10)
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		for _, name := range []string{"block", "mutex", "allocs"} {
			if out, err := os.Create(path + "." + name); err == nil {
				pprof.Lookup(name).WriteTo(out, 0)
				out.Close()
			}
		}
	}, nil
}

func benchRecordsCmd() *cobra.Command {
	o := bench.RecordsOptions{}
	cmd := &cobra.Command{
		Use:   "records",
		Short: "Measure first and in-session authorized reads (p50/p99), facade reads per second and access requests per second",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return benchRun(cmd, "records", 10*time.Minute, func(ctx context.Context, dir string) error {
				o.Dir = dir
				fmt.Fprintf(cmd.OutOrStdout(), "records benchmark on a dev node: %d first reads, %d session reads, %d facade reads in flight for %s, then %d accounts x %d access requests in flight for %s; %d CPUs\n",
					o.Reads, o.Reads, o.ReadInflight, o.ReadDuration, o.Requesters, o.PerRequester, o.AccessDuration, runtime.NumCPU())
				r, err := bench.Records(ctx, o)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), r)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&o.Reads, "reads", 100, "sequential first reads, and sequential reads inside the session")
	cmd.Flags().IntVar(&o.ReadInflight, "read-inflight", 256, "facade reads in flight for the throughput figure")
	cmd.Flags().DurationVar(&o.ReadDuration, "read-duration", 10*time.Second, "facade read load duration")
	cmd.Flags().IntVar(&o.Requesters, "accounts", 8, "accounts sending access requests (demo accounts, at most 8)")
	cmd.Flags().IntVar(&o.PerRequester, "inflight", 128, "access requests in flight per account")
	cmd.Flags().DurationVar(&o.AccessDuration, "duration", 15*time.Second, "access request load duration")
	return cmd
}

func benchFHIRCmd() *cobra.Command {
	o := bench.FHIROptions{}
	cmd := &cobra.Command{
		Use:   "fhir",
		Short: "Measure the FHIR facade: search pages, $everything and $export for a grantee, on a dev node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return benchRun(cmd, "fhir", 20*time.Minute, func(ctx context.Context, dir string) error {
				o.Dir = dir
				fmt.Fprintf(cmd.OutOrStdout(), "FHIR facade benchmark on a dev node: %d Observations of one patient, %d records in 8 categories of another; %d CPUs\n",
					o.Observations, o.Everything, runtime.NumCPU())
				r, err := bench.FHIR(ctx, o)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), r)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&o.Observations, "observations", 2000, "Observations of the search patient")
	cmd.Flags().IntVar(&o.Everything, "everything", 200, "records of the $everything patient, in 8 categories")
	return cmd
}

// benchRun is a benchmark subcommand's frame: a temporary directory (removed after), the
// --cpuprofile, and a timeout for run.
func benchRun(cmd *cobra.Command, name string, timeout time.Duration, run func(ctx context.Context, dir string) error) error {
	dir, err := os.MkdirTemp("", "medchain-bench-"+name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	stop, err := startProfile(cmd.Flag("cpuprofile").Value.String())
	if err != nil {
		return err
	}
	defer stop()
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	return run(ctx, dir)
}
