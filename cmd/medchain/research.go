package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/research"
)

func researchCmd() *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{Use: "research", Short: "Research on de-identified data: studies, opt-in, contributions at the edge, datasets"}
	f.register(cmd)
	send := f.sendMsg
	withAgent := func(cmd *cobra.Command, run func(ctx context.Context, a *agent.Agent) error) error {
		return f.withAgent(cmd, 10*time.Minute, run)
	}

	var reg research.Register
	var ethics, from, to string
	register := &cobra.Command{Use: "register", Short: "Register a study's data request (an attested research organization or trial sponsor)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if reg.Ethics, err = resolveAddr(f.home, ethics); err != nil {
				return err
			}
			for _, d := range []struct {
				s   string
				dst **time.Time
			}{{from, &reg.Request.From}, {to, &reg.Request.To}} {
				if d.s == "" {
					continue
				}
				t, err := time.Parse(time.DateOnly, d.s)
				if err != nil {
					return fmt.Errorf("a date is YYYY-MM-DD: %w", err)
				}
				*d.dst = &t
			}
			return send(cmd, research.TypeRegister, &reg)
		}}
	register.Flags().StringVar(&reg.ID, "id", "", "study id")
	register.Flags().StringVar(&reg.Title, "title", "", "title")
	register.Flags().StringVar(&reg.Topic, "topic", "", "research topic patients may opt in to as a whole")
	register.Flags().StringVar(&ethics, "ethics", "", "the ethics committee (key name or address)")
	register.Flags().StringSliceVar(&reg.Request.Types, "type", nil, "FHIR resource types (repeat)")
	register.Flags().StringSliceVar(&reg.Request.Codes, "code", nil, "system|code of the resources' main code (repeat; none: all)")
	register.Flags().StringVar(&from, "from-date", "", "the data's period: from (YYYY-MM-DD)")
	register.Flags().StringVar(&to, "to-date", "", "the data's period: to (YYYY-MM-DD)")
	register.Flags().StringVar(&reg.Request.Level, "level", research.LevelSafeHarbor, "de-identification: safe-harbor (dates to the year) or safe-harbor-shifted (dates shifted per patient)")
	register.Flags().IntVar(&reg.Request.K, "k", research.DefaultK, "the smallest cohort released")

	var study, topic, patientFor string
	studyCmd := func(use, short, typ string, msg func() any) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error { return send(cmd, typ, msg()) }}
		c.Flags().StringVar(&study, "study", "", "study id")
		return c
	}
	approve := studyCmd("approve", "Approve a study (its ethics committee)", research.TypeApprove, func() any { return research.Approve{Study: study} })
	openRound := studyCmd("open-round", "Open a study's next extraction round (the study)", research.TypeOpenRound, func() any { return research.OpenRound{Study: study} })
	consentCmd := func(use, short, typ string) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			m := research.OptIn{Study: study, Topic: topic}
			if patientFor != "" {
				var err error
				if m.Patient, err = resolveAddr(f.home, patientFor); err != nil {
					return err
				}
			}
			return send(cmd, typ, m)
		}}
		c.Flags().StringVar(&study, "study", "", "study id")
		c.Flags().StringVar(&topic, "topic", "", "research topic (every approved study of it)")
		c.Flags().StringVar(&patientFor, "for", "", "the patient a guardian acts for")
		return c
	}
	optIn := consentCmd("opt-in", "Consent to research on your de-identified data: one study, or a topic", research.TypeOptIn)
	withdraw := consentCmd("withdraw", "Withdraw a research consent: the study reads none of your contributions from the next block", research.TypeWithdraw)

	contribute := &cobra.Command{Use: "contribute STUDY", Short: "De-identify your records the study asks for, here, and contribute them to its current round", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAgent(cmd, func(ctx context.Context, a *agent.Agent) error {
				c, err := a.Contribute(ctx, args[0], time.Now())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "contributed %d de-identified resources (%d not releasable) to round %d of %s in block %d; record %s, dataset hash %x\n",
					c.Resources, c.Skipped, c.Round, c.Study, c.Height, c.Record, c.DatasetHash)
				return nil
			})
		}}
	var round int
	var out string
	var declareToo bool
	extract := &cobra.Command{Use: "extract STUDY", Short: "Assemble a round's dataset as FHIR NDJSON (the study; at least k contributors)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAgent(cmd, func(ctx context.Context, a *agent.Agent) error {
				ds, err := a.StudyDataset(ctx, args[0], round)
				if err != nil {
					return err
				}
				if err := ds.Write(out); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %d contributions (%v) to %s; dataset hash %s\n", ds.Contributions, ds.Counts, out, hex.EncodeToString(ds.Hash))
				for _, r := range ds.Rejected {
					fmt.Fprintf(cmd.OutOrStdout(), "left out contribution %s\n", r)
				}
				if declareToo {
					h, err := a.DeclareDataset(ctx, ds)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "declared in block %d\n", h)
				}
				return nil
			})
		}}
	extract.Flags().IntVar(&round, "round", 1, "round")
	extract.Flags().StringVar(&out, "out", "dataset", "directory to write the NDJSON files and manifest.json to")
	extract.Flags().BoolVar(&declareToo, "declare", false, "declare the dataset on the ledger by its hash")

	show := &cobra.Command{Use: "show STUDY", Short: "Show a study, its rounds' contributions and declared datasets (public)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := client.New(f.nodeURL)
			s, err := c.Study(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), s)
			for r := 1; r <= s.Round; r++ {
				cs, err := c.StudyContributions(cmd.Context(), s.ID, r)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "round %d: %d contributions\n", r, len(cs))
				printJSON(cmd.OutOrStdout(), cs)
			}
			ds, err := c.StudyDatasets(cmd.Context(), s.ID)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "declared datasets: %d\n", len(ds))
			if len(ds) > 0 {
				printJSON(cmd.OutOrStdout(), ds)
			}
			return nil
		}}
	mine := &cobra.Command{Use: "mine", Short: "List your research consents and which studies your contributions went to", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			_, s, err := f.open(ctx)
			if err != nil {
				return err
			}
			pr, err := s.Reads().PatientResearch(ctx, s.Address())
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), pr)
			return nil
		}}
	reads := &cobra.Command{Use: "reads STUDY", Short: "List a study's research reads: whose contribution it read, when (the study or a regulator)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			_, s, err := f.open(ctx)
			if err != nil {
				return err
			}
			evs, err := s.Reads().StudyReads(ctx, args[0])
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), evs)
			return nil
		}}
	cmd.AddCommand(register, approve, openRound, optIn, withdraw, contribute, extract, show, mine, reads)
	return cmd
}
