package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/contracts/care"
	"github.com/medchain/medchain/tx"
)

func careCmd() *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{Use: "care", Short: "Care coordination: standing referral rules, referrals, the care team's tasks"}
	f.register(cmd)
	var patient, to, referrer, owner, record, status string
	var cats []string
	var days int
	var id uint64
	// tagged resolves the patient and turns category names into its tags (the agent of --from).
	tagged := func(ctx context.Context) (tx.Address, []string, error) {
		a, _, err := f.open(ctx)
		if err != nil {
			return "", nil, err
		}
		p := a.Address()
		if patient != "" {
			if p, err = resolveAddr(f.home, patient); err != nil {
				return "", nil, err
			}
		}
		out := make([]string, len(cats))
		for i, c := range cats {
			if out[i], err = a.CategoryTag(ctx, p, c); err != nil {
				return "", nil, err
			}
		}
		return p, out, nil
	}
	send := func(cmd *cobra.Command, typ string, build func(ctx context.Context) (any, error)) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
		defer cancel()
		msg, err := build(ctx)
		if err != nil {
			return err
		}
		return f.sendMsg(cmd, typ, msg)
	}
	addr := func(s string) (tx.Address, error) { return resolveAddr(f.home, s) }
	rule := &cobra.Command{Use: "rule", Short: "Let a referrer refer you on, carrying these categories for so many days (a patient)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return send(cmd, care.TypeRule, func(ctx context.Context) (any, error) {
				p, tags, err := tagged(ctx)
				if err != nil {
					return nil, err
				}
				r, err := addr(referrer)
				m := care.Rule{Referrer: r, Categories: tags, Days: days}
				if patient != "" {
					m.Patient = p
				}
				return m, err
			})
		}}
	rule.Flags().StringVar(&referrer, "referrer", "", "who may refer you (key name or address)")
	rule.Flags().StringSliceVar(&cats, "category", nil, "categories a referral may carry (repeat)")
	rule.Flags().IntVar(&days, "days", 30, "how long a referral lasts")
	rule.Flags().StringVar(&patient, "for", "", "the patient a guardian acts for")
	refer := &cobra.Command{Use: "refer", Short: "Refer a patient to another provider under its standing rule (the referrer)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return send(cmd, care.TypeRefer, func(ctx context.Context) (any, error) {
				p, tags, err := tagged(ctx)
				if err != nil {
					return nil, err
				}
				t, err := addr(to)
				return care.Refer{Patient: p, Rule: id, To: t, Categories: tags, Request: record}, err
			})
		}}
	refer.Flags().StringVar(&patient, "patient", "", "the patient (key name or address)")
	refer.Flags().Uint64Var(&id, "rule", 0, "the patient's standing rule")
	refer.Flags().StringVar(&to, "to", "", "the provider referred to")
	refer.Flags().StringSliceVar(&cats, "category", nil, "categories the referral carries (repeat)")
	refer.Flags().StringVar(&record, "request", "", "the ServiceRequest record, if any")
	task := &cobra.Command{Use: "task", Short: "Anchor a Task record of the patient's care plan and assign it", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return send(cmd, care.TypeTask, func(context.Context) (any, error) {
				p, err := addr(patient)
				if err != nil {
					return nil, err
				}
				o, err := addr(owner)
				return care.NewTask{Patient: p, Record: record, Owner: o}, err
			})
		}}
	task.Flags().StringVar(&patient, "patient", "", "the patient")
	task.Flags().StringVar(&record, "record", "", "the Task record")
	task.Flags().StringVar(&owner, "owner", "", "who is to do it")
	statusCmd := &cobra.Command{Use: "status", Short: "Move a task: accepted, rejected, in-progress, completed (its owner) or cancelled", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return send(cmd, care.TypeTaskStatus, func(context.Context) (any, error) {
				p, err := addr(patient)
				return care.TaskStatus{Patient: p, Record: record, Status: status}, err
			})
		}}
	statusCmd.Flags().StringVar(&patient, "patient", "", "the patient")
	statusCmd.Flags().StringVar(&record, "record", "", "the Task record")
	statusCmd.Flags().StringVar(&status, "status", "", "the new status")
	show := &cobra.Command{Use: "show PATIENT", Short: "Show a patient's rules, referrals and tasks as you may see them", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			_, s, err := f.open(ctx)
			if err != nil {
				return err
			}
			p, err := addr(args[0])
			if err != nil {
				return err
			}
			v, err := s.Reads().Care(ctx, p)
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), v)
			return nil
		}}
	cmd.AddCommand(rule, refer, task, statusCmd, show)
	return cmd
}
