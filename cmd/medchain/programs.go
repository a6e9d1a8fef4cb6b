package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/contracts/programs"
)

func programsCmd() *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{Use: "programs", Short: "Healthy-behaviour programs: define, enroll, devices, evaluate, redeem (points never transfer)"}
	f.register(cmd)
	send := f.sendMsg
	withAgent := func(cmd *cobra.Command, run func(ctx context.Context, a *agent.Agent) error) error {
		return f.withAgent(cmd, 5*time.Minute, run)
	}
	var def programs.Define
	define := &cobra.Command{Use: "define", Short: "Define a program (an attested insurer or employer)", Args: cobra.NoArgs,
		Long: `Defines a program whose --rule is CEL over readings (a list of {code: "system|code", value: double,
day: int}, one per code and day, the day's highest signed reading) and days (the period's
length), for example: readings.filter(r, r.code == "http://loinc.org|55423-8" && r.value >= 8000.0).size() >= 20`,
		RunE: func(cmd *cobra.Command, _ []string) error { return send(cmd, programs.TypeDefine, &def) }}
	define.Flags().StringVar(&def.ID, "id", "", "program id")
	define.Flags().StringVar(&def.Title, "title", "", "title")
	define.Flags().StringVar(&def.Rule, "rule", "", "the CEL rule")
	define.Flags().Int64Var(&def.Points, "points", 100, "points an achievement earns")
	define.Flags().IntVar(&def.PeriodDays, "period", 30, "the period's length in days")
	define.Flags().StringSliceVar(&def.Categories, "category", []string{"vital-signs"}, "categories the program reads (repeat)")

	var days int
	enroll := &cobra.Command{Use: "enroll PROGRAM", Short: "Enroll, and let the program's sponsor read its categories (a patient)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAgent(cmd, func(ctx context.Context, a *agent.Agent) error {
				return a.EnrollProgram(ctx, args[0], time.Now().AddDate(0, 0, days))
			})
		}}
	enroll.Flags().IntVar(&days, "days", 365, "how long the sponsor may read")
	var keyHex string
	device := &cobra.Command{Use: "device", Short: "Register a device's ed25519 public key: readings it signs count (a patient)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := hex.DecodeString(keyHex)
			if err != nil || len(key) != ed25519.PublicKeySize {
				return fmt.Errorf("--key is an ed25519 public key in hex (64 characters)")
			}
			return send(cmd, programs.TypeDevice, programs.Device{Key: key})
		}}
	device.Flags().StringVar(&keyHex, "key", "", "the device's public key (hex)")
	var patient string
	var period int
	evaluate := &cobra.Command{Use: "evaluate PROGRAM", Short: "Evaluate a patient's period and credit it if achieved (the sponsor)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAgent(cmd, func(ctx context.Context, a *agent.Agent) error {
				p, err := resolveAddr(f.home, patient)
				if err != nil {
					return err
				}
				res, err := a.EvaluateProgram(ctx, args[0], p, period)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "achieved: %t (%d signed readings counted, %d left out); points: %d\n", res.Achieved, res.Counted, res.Rejected, res.Points)
				return nil
			})
		}}
	evaluate.Flags().StringVar(&patient, "patient", "", "the patient")
	evaluate.Flags().IntVar(&period, "period", 0, "the period since enrollment (0: the first)")
	var rd programs.Redeem
	redeemCmd := &cobra.Command{Use: "redeem", Short: "Redeem points for a benefit (a patient)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return send(cmd, programs.TypeRedeem, &rd) }}
	redeemCmd.Flags().StringVar(&rd.Program, "program", "", "program id")
	redeemCmd.Flags().Int64Var(&rd.Points, "points", 0, "points")
	redeemCmd.Flags().StringVar(&rd.Benefit, "benefit", "", "the benefit")
	show := &cobra.Command{Use: "show PROGRAM", Short: "Show a program and, with --patient, the enrollment and balance (the patient or the sponsor)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			_, s, err := f.open(ctx)
			if err != nil {
				return err
			}
			p, err := resolveAddr(f.home, patient)
			if patient == "" {
				p, err = "", nil
			}
			if err != nil {
				return err
			}
			v, err := s.Reads().Program(ctx, args[0], p, nil)
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), v)
			return nil
		}}
	show.Flags().StringVar(&patient, "patient", "", "the patient")
	cmd.AddCommand(define, enroll, device, evaluate, redeemCmd, show)
	return cmd
}
