package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/supply"
	"github.com/medchain/medchain/keyring"
)

// deciCelsius turns "2.5" (°C) into 25 tenths.
func deciCelsius(s string) (int32, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < -273 || f > 200 {
		return 0, fmt.Errorf("temperature %q: give degrees Celsius, e.g. 2.5", s)
	}
	return int32(math.Round(f * 10)), nil
}

func supplyCmd() *cobra.Command {
	f := &txFlags{}
	cmd := &cobra.Command{Use: "supply", Short: "Drug supply chain: products, packs, custody, cold chain, recalls, verification"}
	f.register(cmd)
	send := func(typ string, msg any) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			_, _, err := f.send(cmd, typ, func(*keyring.Key, string, uint64) (any, error) { return msg, nil })
			return err
		}
	}

	var prod supply.RegisterProduct
	var minT, maxT string
	product := &cobra.Command{Use: "register-product", Short: "Register a GTIN with its storage range (manufacturers)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if prod.MinDeciC, err = deciCelsius(minT); err != nil {
				return err
			}
			if prod.MaxDeciC, err = deciCelsius(maxT); err != nil {
				return err
			}
			return send(supply.TypeRegisterProduct, &prod)(cmd, args)
		}}
	product.Flags().StringVar(&prod.GTIN, "gtin", "", "GTIN-14")
	product.Flags().StringVar(&prod.Name, "name", "", "product name")
	product.Flags().StringVar(&minT, "min-temp", "2", "lowest allowed temperature, °C")
	product.Flags().StringVar(&maxT, "max-temp", "8", "highest allowed temperature, °C")

	var com supply.Commission
	commission := &cobra.Command{Use: "commission", Short: "Commission serialized packs of a lot (the product's manufacturer)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return send(supply.TypeCommission, &com)(cmd, args) }}
	commission.Flags().StringVar(&com.GTIN, "gtin", "", "GTIN-14")
	commission.Flags().StringVar(&com.Lot, "lot", "", "lot number")
	commission.Flags().StringVar(&com.Expiry, "expiry", "", "expiry date YYYY-MM-DD")
	commission.Flags().StringSliceVar(&com.Serials, "serial", nil, "serial numbers (repeat or comma-separate)")

	var agg supply.Aggregate
	aggregate := &cobra.Command{Use: "aggregate", Short: "Pack items into a case or pallet (SSCC)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return send(supply.TypeAggregate, &agg)(cmd, args) }}
	aggregate.Flags().StringVar(&agg.SSCC, "sscc", "", "SSCC of the new container")
	aggregate.Flags().StringSliceVar(&agg.Items, "item", nil, "GS1 code of a pack or container (repeat)")

	var dis supply.Disaggregate
	disaggregate := &cobra.Command{Use: "disaggregate", Short: "Unpack a container", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return send(supply.TypeDisaggregate, &dis)(cmd, args) }}
	disaggregate.Flags().StringVar(&dis.SSCC, "sscc", "", "SSCC")

	var shipMsg supply.Ship
	var to string
	shipCmd := &cobra.Command{Use: "ship", Short: "Ship items you hold to an organization", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := resolveAddr(f.home, to)
			if err != nil {
				return err
			}
			shipMsg.To = a
			return send(supply.TypeShip, &shipMsg)(cmd, args)
		}}
	shipCmd.Flags().StringVar(&to, "to", "", "recipient address or key name")
	shipCmd.Flags().StringSliceVar(&shipMsg.Items, "item", nil, "GS1 code of a pack or container (repeat)")
	shipCmd.Flags().BoolVar(&shipMsg.Return, "return", false, "a return to the manufacturer (allowed for recalled or quarantined stock)")

	var rcv supply.Receive
	receive := &cobra.Command{Use: "receive", Short: "Receive a shipment addressed to you", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return send(supply.TypeReceive, &rcv)(cmd, args) }}
	receive.Flags().Uint64Var(&rcv.Shipment, "shipment", 0, "shipment id")

	var dispenseCode string
	dispense := &cobra.Command{Use: "dispense", Short: "Verify a scanned pack and, if authentic, record its dispensing", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			v, err := client.New(f.nodeURL).Verify(ctx, dispenseCode)
			cancel()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), v.Message)
			if v.Status != supply.StatusAuthentic {
				return fmt.Errorf("not dispensed: %s", v.Status)
			}
			return send(supply.TypeDispense, &supply.Items{Items: []string{dispenseCode}})(cmd, args)
		}}
	dispense.Flags().StringVar(&dispenseCode, "code", "", "the scanned GS1 code")

	endOfLife := func(use, short, typ string) *cobra.Command {
		var m supply.Items
		c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error { return send(typ, &m)(cmd, args) }}
		c.Flags().StringSliceVar(&m.Items, "item", nil, "GS1 code (repeat)")
		c.Flags().StringVar(&m.Reason, "reason", "", "why")
		return c
	}

	var sensorID, sensorPub string
	sensor := &cobra.Command{Use: "register-sensor", Short: "Register a temperature logger's Ed25519 public key", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := sensorPublicKey(f.home, sensorPub)
			if err != nil {
				return err
			}
			return send(supply.TypeRegisterSensor, &supply.RegisterSensor{ID: sensorID, PubKey: pub})(cmd, args)
		}}
	sensor.Flags().StringVar(&sensorID, "id", "", "sensor id")
	sensor.Flags().StringVar(&sensorPub, "pub-key", "", "base64 Ed25519 public key, or the name of a key in the keyring")

	var tShipment uint64
	var tSensor, tSensorKey string
	var tReadings []string
	temperature := &cobra.Command{Use: "temperature", Short: "Submit readings signed with a sensor key (TIME=°C ...)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var readings []supply.Reading
			for _, r := range tReadings {
				at, val, ok := strings.Cut(r, "=")
				t, err := time.Parse(time.RFC3339, at)
				if !ok || err != nil {
					return fmt.Errorf("reading %q: use RFC3339-TIME=DEGREES", r)
				}
				d, err := deciCelsius(val)
				if err != nil {
					return err
				}
				readings = append(readings, supply.Reading{At: t.Unix(), DeciC: d})
			}
			sk, err := loadKey(f.home, tSensorKey)
			if err != nil {
				return err
			}
			_, _, err = f.send(cmd, supply.TypeRecordTemperature, func(_ *keyring.Key, chainID string, _ uint64) (any, error) {
				sig := ed25519.Sign(sk.Signing, supply.TemperatureStatement(chainID, tShipment, tSensor, readings))
				return supply.RecordTemperature{Shipment: tShipment, Sensor: tSensor, Readings: readings, Sig: sig}, nil
			})
			return err
		}}
	temperature.Flags().Uint64Var(&tShipment, "shipment", 0, "shipment id")
	temperature.Flags().StringVar(&tSensor, "sensor", "", "sensor id")
	temperature.Flags().StringVar(&tSensorKey, "sensor-key", "", "keyring key holding the sensor's signing key")
	temperature.Flags().StringSliceVar(&tReadings, "reading", nil, "TIME=°C, e.g. 2026-11-21T10:00:00Z=5.5 (repeat)")

	var qa supply.QADecision
	qaCmd := &cobra.Command{Use: "qa", Short: "Release or destroy packs quarantined by an excursion (manufacturer)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return send(supply.TypeQADecision, &qa)(cmd, args) }}
	qaCmd.Flags().StringSliceVar(&qa.Items, "item", nil, "GS1 code (repeat)")
	qaCmd.Flags().StringVar(&qa.Decision, "decision", "", "release or destroy")

	lotCmd := func(use, short, typ string) *cobra.Command {
		var m supply.LotAction
		c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error { return send(typ, &m)(cmd, args) }}
		c.Flags().StringVar(&m.GTIN, "gtin", "", "GTIN-14")
		c.Flags().StringVar(&m.Lot, "lot", "", "lot number")
		c.Flags().StringVar(&m.Reason, "reason", "", "why")
		return c
	}

	verify := &cobra.Command{Use: "verify CODE", Short: "Verify a scanned pack: authentic, counterfeit, dispensed, recalled, ...", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			v, err := client.New(f.nodeURL).Verify(ctx, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, v.Message)
			for _, e := range v.History {
				fmt.Fprintf(out, "  %s  %-16s %-18s by %s", e.Time.Format(time.RFC3339), e.BizStep, e.Disposition, e.Actor)
				if e.Destination != "" {
					fmt.Fprintf(out, " -> %s", e.Destination)
				}
				fmt.Fprintln(out)
			}
			if v.Status != supply.StatusAuthentic {
				return fmt.Errorf("%s", v.Status)
			}
			return nil
		}}
	epcis := &cobra.Command{Use: "epcis CODE", Short: "Print an item's history as an EPCIS 2.0 JSON document", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			doc, err := client.New(f.nodeURL).EPCIS(ctx, args[0])
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), doc)
			return nil
		}}
	shipment := &cobra.Command{Use: "shipment ID", Short: "Show a shipment", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("shipment id must be a number: %w", errUsage)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			s, err := client.New(f.nodeURL).Shipment(ctx, id)
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), s)
			return nil
		}}
	cmd.AddCommand(product, commission, aggregate, disaggregate, shipCmd, receive, dispense,
		endOfLife("destroy", "Destroy items you hold", supply.TypeDestroy),
		endOfLife("decommission", "Decommission items you hold", supply.TypeDecommission),
		sensor, temperature, qaCmd,
		lotCmd("recall", "Recall a lot (manufacturer or regulator)", supply.TypeRecall),
		lotCmd("quarantine-lot", "Quarantine a lot (manufacturer or regulator)", supply.TypeQuarantineLot),
		lotCmd("release-lot", "Release a quarantined lot (manufacturer or regulator)", supply.TypeReleaseLot),
		verify, epcis, shipment)
	return cmd
}

// sensorPublicKey accepts a base64 key or the name of a keyring key.
func sensorPublicKey(home, s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
		return b, nil
	}
	k, err := loadKey(home, s)
	if err != nil {
		return nil, fmt.Errorf("--pub-key is neither a base64 Ed25519 key nor a keyring key: %w", err)
	}
	return k.Signing.Public().(ed25519.PublicKey), nil
}
