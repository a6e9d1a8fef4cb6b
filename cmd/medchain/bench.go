package main

import (
	"context"
	"fmt"
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
	var rounds int
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure committed tx/s and commit latency: medchain vs CometBFT's kvstore, same settings",
		Long: `Starts a fresh single-validator medchain node, submits --txs pre-signed identity registrations
at full speed, then does the same against CometBFT's kvstore example app (same CometBFT settings,
same tx size) as the consensus engine's ceiling on this machine, and prints both and their ratio.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "benchmark: %d txs per run, %d submitters, %d CPUs, %s\n", o.Txs, o.Workers, runtime.NumCPU(), runtime.Version())
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
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
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Txs, "txs", 100000, "transactions per run")
	cmd.Flags().IntVar(&rounds, "rounds", 1, "alternate medchain and kvstore runs this many times; report medians")
	cmd.Flags().IntVar(&o.Workers, "workers", 16, "concurrent submitters")
	cmd.Flags().IntVar(&o.Window, "window", 15000, "max txs in flight (keep below the mempool size, 20000)")
	cmd.Flags().StringVar(&o.Only, "only", "", "run only medchain or kvstore (for profiling)")
	cmd.Flags().StringVar(&o.Dir, "dir", "", "scratch directory (default: a temp dir, removed after)")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of both runs to this file")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	return cmd
}
