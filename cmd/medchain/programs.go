package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
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
				until := time.Now().AddDate(0, 0, days)
				if err := a.EnrollProgram(ctx, args[0], until); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "enrolled in %s; its sponsor may read the program's categories until %s\n", args[0], until.UTC().Format(time.DateOnly))
				return nil
			})
		}}
	enroll.Flags().IntVar(&days, "days", 365, "how long the sponsor may read")
	var keyHex, newKey string
	device := &cobra.Command{Use: "device", Short: "Register a device's ed25519 public key: readings it signs count (a patient)", Args: cobra.NoArgs,
		Long: `Registers a device's public key (--key, hex), or makes a new device key, writes it to
--new-key (PKCS#8 PEM, mode 0600; an existing file is never overwritten) and registers its
public key: "medchain programs reading" then signs readings with that file, as the device would.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if newKey != "" {
				pub, err := newDeviceKey(newKey)
				if err != nil {
					return err
				}
				keyHex = hex.EncodeToString(pub)
				fmt.Fprintf(cmd.OutOrStdout(), "device key %s written to %s\n", keyHex, newKey)
			}
			key, err := hex.DecodeString(keyHex)
			if err != nil || len(key) != ed25519.PublicKeySize {
				return fmt.Errorf("--key is an ed25519 public key in hex (64 characters), or --new-key names a file to create")
			}
			return send(cmd, programs.TypeDevice, programs.Device{Key: key})
		}}
	device.Flags().StringVar(&keyHex, "key", "", "the device's public key (hex)")
	device.Flags().StringVar(&newKey, "new-key", "", "make a new device key in this file and register it")
	var deviceKey, readingFor string
	readingCmd := &cobra.Command{Use: "reading OBSERVATION.json|-", Short: "Sign an Observation's reading with a device key and store it as the patient's record", Args: cobra.ExactArgs(1),
		Long: `Plays the patient's device: signs the Observation's reading (its code, valueQuantity and
effectiveDateTime) with --device-key (from "programs device --new-key") for the patient (--for,
else the --from account) and stores it through the --from account's agent. Only readings signed
by a device registered for the patient count in a program.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := readInput(args[0])
			if err != nil {
				return err
			}
			dev, err := readDeviceKey(deviceKey)
			if err != nil {
				return err
			}
			return withAgent(cmd, func(ctx context.Context, a *agent.Agent) error {
				patient := a.Address()
				if readingFor != "" {
					if patient, err = resolveAddr(f.home, readingFor); err != nil {
						return err
					}
				}
				if ref, err := parseRef(raw); err == nil && ref != "" {
					a.SetPatient(ref, patient)
				}
				signed, err := agent.SignReading(dev, a.ChainID(), patient, raw)
				if err != nil {
					return err
				}
				s, err := a.Add(ctx, signed)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "signed reading stored as record %s in block %d\n", s.Anchor.ID, s.Height)
				return nil
			})
		}}
	readingCmd.Flags().StringVar(&deviceKey, "device-key", "", "the device's key file (PKCS#8 PEM)")
	readingCmd.Flags().StringVar(&readingFor, "for", "", "the patient (address or key name; default the --from account)")
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
	cmd.AddCommand(define, enroll, device, readingCmd, evaluate, redeemCmd, show)
	return cmd
}

// newDeviceKey makes an ed25519 device key and writes it to path (PKCS#8 PEM, 0600; never over
// an existing file); it returns the public key.
func newDeviceKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("device key: %w", err)
	}
	if err := errors.Join(pem.Encode(out, &pem.Block{Type: "PRIVATE KEY", Bytes: der}), out.Sync(), out.Close()); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("device key %s: %w", path, err)
	}
	return pub, nil
}

// readDeviceKey reads a device key file that newDeviceKey wrote.
func readDeviceKey(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		return nil, errors.New("--device-key names the device's key file")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("device key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("device key %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("device key %s: %w", path, err)
	}
	dev, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("device key %s: not an ed25519 key", path)
	}
	return dev, nil
}
