package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/tx"
)

func telemedCmd() *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{Use: "telemed", Short: "Telemedicine consultations: book, cancel, complete, list"}
	f.register(cmd)
	withAgent := func(cmd *cobra.Command, run func(ctx context.Context, a *agent.Agent) error) error {
		return f.withAgent(cmd, 2*time.Minute, run)
	}
	var b agent.Booking
	var practitioner, start, forPatient string
	book := &cobra.Command{Use: "book", Short: "Book a consultation: the practitioner reads and writes the categories you choose, only in its window", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAgent(cmd, func(ctx context.Context, a *agent.Agent) error {
				var err error
				if b.Practitioner, err = resolveAddr(f.home, practitioner); err != nil {
					return err
				}
				if b.Start, err = time.Parse(time.RFC3339, start); err != nil {
					return fmt.Errorf("--start is an instant such as 2026-12-08T10:00:00Z: %w", err)
				}
				patient := a.Address()
				if forPatient != "" {
					if patient, err = resolveAddr(f.home, forPatient); err != nil {
						return err
					}
				}
				id, stored, err := a.BookConsultation(ctx, patient, b, nil)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "consultation %d booked; the appointment is record %s\n", id, stored.Anchor.ID)
				return nil
			})
		}}
	book.Flags().StringVar(&practitioner, "practitioner", "", "the practitioner (key name or address)")
	book.Flags().StringSliceVar(&b.Categories, "category", nil, "categories the practitioner may read and write (repeat; encounters always)")
	book.Flags().StringVar(&start, "start", "", "when it starts (RFC 3339)")
	book.Flags().IntVar(&b.Minutes, "minutes", 30, "how long it lasts")
	book.Flags().IntVar(&b.FollowUpDays, "follow-up", 0, "days of follow-up after it ends")
	book.Flags().StringVar(&b.MeetingLink, "link", "", "the video meeting's link (kept in your encrypted Appointment record)")
	book.Flags().StringVar(&forPatient, "for", "", "the patient a guardian books for")

	var patient string
	var id uint64
	closeCmd := func(use, short string, do func(ctx context.Context, a *agent.Agent) error) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error { return withAgent(cmd, do) }}
		c.Flags().StringVar(&patient, "patient", "", "the patient (key name or address)")
		c.Flags().Uint64Var(&id, "id", 0, "the consultation")
		return c
	}
	resolve := func() (tx.Address, error) { return resolveAddr(f.home, patient) }
	cancelCmd := closeCmd("cancel", "Cancel a consultation before it starts (the patient, a guardian or the practitioner)", func(ctx context.Context, a *agent.Agent) error {
		p, err := resolve()
		if err != nil {
			return err
		}
		return a.CancelConsultation(ctx, p, id)
	})
	complete := closeCmd("complete", "Complete a consultation (the practitioner): the follow-up period starts", func(ctx context.Context, a *agent.Agent) error {
		p, err := resolve()
		if err != nil {
			return err
		}
		return a.CompleteConsultation(ctx, p, id)
	})
	list := &cobra.Command{Use: "list PATIENT", Short: "List a patient's consultations (the patient, a guardian, or a practitioner: its own)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			_, s, err := f.open(ctx)
			if err != nil {
				return err
			}
			p, err := resolveAddr(f.home, args[0])
			if err != nil {
				return err
			}
			cs, err := s.Reads().Consultations(ctx, p)
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), cs)
			return nil
		}}
	cmd.AddCommand(book, cancelCmd, complete, list)
	return cmd
}
