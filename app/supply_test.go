package app_test

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/supply"
	"github.com/medchain/medchain/tx"
)

const (
	gtin = "09506000134352"
	sscc = "106141411234567897"
)

func pack(serial string) string { return "(01)" + gtin + "(21)" + serial }

// supplyChain is a chain with an attested manufacturer, distributor, pharmacy and regulator.
type supplyChain struct {
	*chain
	reg, mfr, dist, pharm, regulator *key
}

func newSupplyChain(t *testing.T) *supplyChain {
	reg := newKey("registrar")
	s := &supplyChain{chain: newChain(t, reg), reg: reg, mfr: newKey("mfr"), dist: newKey("dist"), pharm: newKey("pharm"), regulator: newKey("regulator")}
	for _, org := range []struct {
		k    *key
		kind string
	}{{s.mfr, "manufacturer"}, {s.dist, "distributor"}, {s.pharm, "pharmacy"}, {s.regulator, "regulator"}} { // ordered: state depends on it
		k, kind := org.k, org.kind
		s.must(register(k, identity.RoleOrganization, kind)(t))
		s.must(reg.sign(t, identity.TypeAttest, identity.Attest{Subject: k.addr, Licence: "L-" + kind, Jurisdiction: "NL", ExpiresAt: genesisTime.AddDate(5, 0, 0)}))
	}
	s.must(s.mfr.sign(t, supply.TypeRegisterProduct, supply.RegisterProduct{GTIN: gtin, Name: "Insulin 100 IU/ml", MinDeciC: 20, MaxDeciC: 80}))
	return s
}

func (s *supplyChain) verify(t *testing.T, code string, at time.Time) *supply.Verification {
	t.Helper()
	data, _ := json.Marshal(app.SupplyQuery{Code: code, At: at})
	var v supply.Verification
	if err := json.Unmarshal(query(t, s.chain, app.PathSupplyVerify, data), &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

func (s *supplyChain) expectStatus(t *testing.T, code, want string) {
	t.Helper()
	if v := s.verify(t, code, genesisTime.AddDate(0, 1, 0)); v.Status != want {
		t.Fatalf("verify %s = %s (%s), want %s", code, v.Status, v.Message, want)
	}
}

func TestSupplyCustodyToDispense(t *testing.T) {
	s := newSupplyChain(t)
	s.expect(s.dist.sign(t, supply.TypeRegisterProduct, supply.RegisterProduct{GTIN: "00614141123452", Name: "x", MinDeciC: 0, MaxDeciC: 1}), codes.Unauthorized)
	s.expect(s.mfr.sign(t, supply.TypeRegisterProduct, supply.RegisterProduct{GTIN: "00614141123453", Name: "x", MinDeciC: 0, MaxDeciC: 1}), codes.Invalid)
	s.expect(s.dist.sign(t, supply.TypeCommission, supply.Commission{GTIN: gtin, Lot: "LOT42", Expiry: "2029-12-31", Serials: []string{"X"}}), codes.Unauthorized)
	s.must(s.mfr.sign(t, supply.TypeCommission, supply.Commission{GTIN: gtin, Lot: "LOT42", Expiry: "2029-12-31", Serials: []string{"S1", "S2", "S3", "S4"}}))
	s.expect(s.mfr.sign(t, supply.TypeCommission, supply.Commission{GTIN: gtin, Lot: "LOT42", Expiry: "2029-12-31", Serials: []string{"S1"}}), codes.AlreadyExists)
	s.expectStatus(t, pack("S1"), supply.StatusAuthentic)

	// Pack S1 and S2 in a case; ship the case and S3 to the distributor.
	s.must(s.mfr.sign(t, supply.TypeAggregate, supply.Aggregate{SSCC: sscc, Items: []string{pack("S1"), pack("S2")}}))
	s.expect(s.mfr.sign(t, supply.TypeShip, supply.Ship{To: s.dist.addr, Items: []string{pack("S1")}}), codes.Invalid) // inside the case
	s.must(s.mfr.sign(t, supply.TypeShip, supply.Ship{To: s.dist.addr, Items: []string{"(00)" + sscc, pack("S3")}}))

	// Hijack: nobody but the custodian ships; nobody but the addressee receives.
	s.expect(s.pharm.sign(t, supply.TypeShip, supply.Ship{To: s.pharm.addr, Items: []string{pack("S4")}}), codes.Invalid)
	s.expect(s.pharm.sign(t, supply.TypeShip, supply.Ship{To: s.dist.addr, Items: []string{pack("S4")}}), codes.Unauthorized)
	s.expect(s.dist.sign(t, supply.TypeShip, supply.Ship{To: s.pharm.addr, Items: []string{"(00)" + sscc}}), codes.Unauthorized) // not received yet
	s.expect(s.pharm.sign(t, supply.TypeReceive, supply.Receive{Shipment: 1}), codes.Unauthorized)
	s.must(s.dist.sign(t, supply.TypeReceive, supply.Receive{Shipment: 1}))
	s.expect(s.dist.sign(t, supply.TypeReceive, supply.Receive{Shipment: 1}), codes.Invalid) // once only

	// Moving the case moved its contents: the distributor now holds S1.
	s.must(s.dist.sign(t, supply.TypeDisaggregate, supply.Disaggregate{SSCC: sscc}))
	s.must(s.dist.sign(t, supply.TypeShip, supply.Ship{To: s.pharm.addr, Items: []string{pack("S1")}}))
	s.expect(s.pharm.sign(t, supply.TypeDispense, supply.Items{Items: []string{pack("S1")}}), codes.Unauthorized) // in transit, not in custody
	s.must(s.pharm.sign(t, supply.TypeReceive, supply.Receive{Shipment: 2}))
	s.expect(s.dist.sign(t, supply.TypeDispense, supply.Items{Items: []string{pack("S2")}}), codes.Unauthorized) // not a pharmacy
	s.must(s.pharm.sign(t, supply.TypeDispense, supply.Items{Items: []string{pack("S1")}}))

	// Double dispense is refused and verification says so.
	s.expect(s.pharm.sign(t, supply.TypeDispense, supply.Items{Items: []string{pack("S1")}}), codes.Invalid)
	s.expectStatus(t, pack("S1"), supply.StatusAlreadyDispensed)
	s.expect(s.pharm.sign(t, supply.TypeShip, supply.Ship{To: s.dist.addr, Items: []string{pack("S1")}}), codes.Invalid) // a dispensed pack never moves

	// The whole history exports as EPCIS 2.0.
	data, _ := json.Marshal(app.SupplyQuery{Code: pack("S1"), At: genesisTime})
	var doc supply.EPCISDocument
	if err := json.Unmarshal(query(t, s.chain, app.PathSupplyEPCIS, data), &doc); err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, e := range doc.EPCISBody.EventList {
		steps = append(steps, e.BizStep)
	}
	if fmt.Sprint(steps) != "[commissioning packing shipping receiving unpacking shipping receiving dispensing]" || doc.SchemaVersion != "2.0" {
		t.Fatalf("EPCIS steps = %v", steps)
	}
	if doc.EPCISBody.EventList[0].EPCList[0] != "https://id.gs1.org/01/"+gtin+"/21/S1" || doc.EPCISBody.EventList[1].ParentID != "https://id.gs1.org/00/"+sscc {
		t.Fatalf("EPCIS identifiers: %+v", doc.EPCISBody.EventList[:2])
	}
}

func TestSupplyCounterfeits(t *testing.T) {
	s := newSupplyChain(t)
	s.must(s.mfr.sign(t, supply.TypeCommission, supply.Commission{GTIN: gtin, Lot: "LOT42", Expiry: "2029-12-31", Serials: []string{"S1"}}))
	s.expectStatus(t, pack("NOPE"), supply.StatusSuspectCounterfeit)
	s.expectStatus(t, "(01)"+gtin+"(17)291231(10)FAKE(21)S1", supply.StatusSuspectCounterfeit)  // cloned serial, wrong lot
	s.expectStatus(t, "(01)"+gtin+"(17)301231(10)LOT42(21)S1", supply.StatusSuspectCounterfeit) // wrong expiry
	s.expectStatus(t, "(01)"+gtin+"(17)291231(10)LOT42(21)S1", supply.StatusAuthentic)
	s.expectStatus(t, "https://id.gs1.org/01/"+gtin+"/10/LOT42/21/S1?17=291231", supply.StatusAuthentic)
	// A malformed code is an error, not a verdict.
	data, _ := json.Marshal(app.SupplyQuery{Code: "(01)09506000134353(21)S1", At: genesisTime})
	if r, _ := s.app.Query(t.Context(), abciQuery(app.PathSupplyVerify, data)); codes.Code(r.Code) != codes.Invalid {
		t.Fatalf("bad check digit: code %d %s", r.Code, r.Log)
	}
}

func TestColdChainExcursionAndQA(t *testing.T) {
	s := newSupplyChain(t)
	s.must(s.mfr.sign(t, supply.TypeCommission, supply.Commission{GTIN: gtin, Lot: "LOT42", Expiry: "2029-12-31", Serials: []string{"S1", "S2"}}))
	sensorKey := ed25519.NewKeyFromSeed(make([]byte, 32))
	s.must(s.mfr.sign(t, supply.TypeRegisterSensor, supply.RegisterSensor{ID: "logger-7", PubKey: sensorKey.Public().(ed25519.PublicKey)}))
	s.must(s.mfr.sign(t, supply.TypeShip, supply.Ship{To: s.dist.addr, Items: []string{pack("S1"), pack("S2")}}))

	readings := func(vals ...int32) []supply.Reading {
		var out []supply.Reading
		for i, v := range vals {
			out = append(out, supply.Reading{At: genesisTime.Unix() + int64(i*60), DeciC: v})
		}
		return out
	}
	ok := readings(40, 55, 61)
	s.must(s.mfr.sign(t, supply.TypeRecordTemperature, supply.RecordTemperature{Shipment: 1, Sensor: "logger-7", Readings: ok,
		Sig: ed25519.Sign(sensorKey, supply.TemperatureStatement(chainID, 1, "logger-7", ok))}))
	s.expectStatus(t, pack("S1"), supply.StatusAuthentic)

	hot := readings(60, 95, 70) // 9.5 °C: above 8.0
	other := ed25519.NewKeyFromSeed([]byte("another sensor key, not logger-7"))
	s.expect(s.mfr.sign(t, supply.TypeRecordTemperature, supply.RecordTemperature{Shipment: 1, Sensor: "logger-7", Readings: hot,
		Sig: ed25519.Sign(other, supply.TemperatureStatement(chainID, 1, "logger-7", hot))}), codes.BadSignature)
	s.expect(s.pharm.sign(t, supply.TypeRecordTemperature, supply.RecordTemperature{Shipment: 1, Sensor: "logger-7", Readings: hot,
		Sig: ed25519.Sign(sensorKey, supply.TemperatureStatement(chainID, 1, "logger-7", hot))}), codes.Unauthorized)
	s.must(s.dist.sign(t, supply.TypeRecordTemperature, supply.RecordTemperature{Shipment: 1, Sensor: "logger-7", Readings: hot,
		Sig: ed25519.Sign(sensorKey, supply.TemperatureStatement(chainID, 1, "logger-7", hot))}))
	s.expectStatus(t, pack("S1"), supply.StatusTempExcursion)
	s.expectStatus(t, pack("S2"), supply.StatusTempExcursion)

	// Received, but quarantined: not dispensable, not shippable onward.
	s.must(s.dist.sign(t, supply.TypeReceive, supply.Receive{Shipment: 1}))
	s.expect(s.dist.sign(t, supply.TypeShip, supply.Ship{To: s.pharm.addr, Items: []string{pack("S1")}}), codes.Invalid)
	// The QA decision is the manufacturer's alone.
	s.expect(s.dist.sign(t, supply.TypeQADecision, supply.QADecision{Items: []string{pack("S1")}, Decision: "release"}), codes.Unauthorized)
	s.must(s.mfr.sign(t, supply.TypeQADecision, supply.QADecision{Items: []string{pack("S1")}, Decision: "release"}))
	s.must(s.mfr.sign(t, supply.TypeQADecision, supply.QADecision{Items: []string{pack("S2")}, Decision: "destroy"}))
	s.expectStatus(t, pack("S1"), supply.StatusAuthentic)
	s.expectStatus(t, pack("S2"), supply.StatusInactive)
	// Released stock moves on and is dispensed.
	s.must(s.dist.sign(t, supply.TypeShip, supply.Ship{To: s.pharm.addr, Items: []string{pack("S1")}}))
	s.must(s.pharm.sign(t, supply.TypeReceive, supply.Receive{Shipment: 2}))
	s.must(s.pharm.sign(t, supply.TypeDispense, supply.Items{Items: []string{pack("S1")}}))
}

func TestLotRecallQuarantineAndExpiry(t *testing.T) {
	s := newSupplyChain(t)
	s.must(s.mfr.sign(t, supply.TypeCommission, supply.Commission{GTIN: gtin, Lot: "LOT43", Expiry: "2029-12-31", Serials: []string{"R1", "R2"}}))
	s.must(s.mfr.sign(t, supply.TypeCommission, supply.Commission{GTIN: gtin, Lot: "OLD", Expiry: "2026-01-15", Serials: []string{"E1"}}))
	s.expect(s.dist.sign(t, supply.TypeRecall, supply.LotAction{GTIN: gtin, Lot: "LOT43"}), codes.Unauthorized)

	// A regulator quarantines the lot, then releases it.
	s.must(s.regulator.sign(t, supply.TypeQuarantineLot, supply.LotAction{GTIN: gtin, Lot: "LOT43", Reason: "inspection"}))
	s.expectStatus(t, pack("R1"), supply.StatusQuarantinedLot)
	s.must(s.regulator.sign(t, supply.TypeReleaseLot, supply.LotAction{GTIN: gtin, Lot: "LOT43"}))
	s.expectStatus(t, pack("R1"), supply.StatusAuthentic)

	// The manufacturer recalls it: no dispensing, no shipping except back to the manufacturer.
	s.must(s.mfr.sign(t, supply.TypeShip, supply.Ship{To: s.pharm.addr, Items: []string{pack("R1")}}))
	s.must(s.pharm.sign(t, supply.TypeReceive, supply.Receive{Shipment: 1}))
	s.must(s.mfr.sign(t, supply.TypeRecall, supply.LotAction{GTIN: gtin, Lot: "LOT43", Reason: "contamination"}))
	s.expectStatus(t, pack("R1"), supply.StatusRecalled)
	s.expect(s.pharm.sign(t, supply.TypeDispense, supply.Items{Items: []string{pack("R1")}}), codes.Invalid)
	s.expect(s.pharm.sign(t, supply.TypeShip, supply.Ship{To: s.dist.addr, Items: []string{pack("R1")}}), codes.Invalid)
	s.must(s.pharm.sign(t, supply.TypeShip, supply.Ship{To: s.mfr.addr, Items: []string{pack("R1")}, Return: true}))
	s.expect(s.regulator.sign(t, supply.TypeReleaseLot, supply.LotAction{GTIN: gtin, Lot: "LOT43"}), codes.Invalid)

	// Expiry is checked against the block time when dispensing and the caller's date when verifying.
	if v := s.verify(t, pack("E1"), genesisTime.AddDate(0, 0, 14)); v.Status != supply.StatusAuthentic {
		t.Fatalf("on 2026-01-15: %s", v.Status)
	}
	if v := s.verify(t, pack("E1"), genesisTime.AddDate(0, 0, 15)); v.Status != supply.StatusExpired {
		t.Fatalf("on 2026-01-16: %s", v.Status)
	}
	s.must(s.mfr.sign(t, supply.TypeShip, supply.Ship{To: s.pharm.addr, Items: []string{pack("E1")}}))
	s.must(s.pharm.sign(t, supply.TypeReceive, supply.Receive{Shipment: 3}))
	s.skew = 20 * 24 * time.Hour
	s.expect(s.pharm.sign(t, supply.TypeDispense, supply.Items{Items: []string{pack("E1")}}), codes.Invalid)
}

func TestSupplyHostileInput(t *testing.T) {
	s := newSupplyChain(t)
	for name, msg := range map[string]supply.Commission{
		"serial with space": {GTIN: gtin, Lot: "L", Expiry: "2029-12-31", Serials: []string{"A B"}},
		"long serial":       {GTIN: gtin, Lot: "L", Expiry: "2029-12-31", Serials: []string{"123456789012345678901"}},
		"bad expiry":        {GTIN: gtin, Lot: "L", Expiry: "31/12/2029", Serials: []string{"A"}},
		"no serials":        {GTIN: gtin, Lot: "L", Expiry: "2029-12-31"},
		"unknown gtin":      {GTIN: "00614141123452", Lot: "L", Expiry: "2029-12-31", Serials: []string{"A"}},
	} {
		t.Run(name, func(t *testing.T) {
			before := len(s.hashes)
			r := s.block(s.mfr.sign(t, supply.TypeCommission, msg))[0]
			if r.Code == 0 {
				t.Fatal("accepted")
			}
			if before > 0 && string(s.hashes[len(s.hashes)-1]) == string(s.hashes[before-1]) {
				t.Fatal("nonce was not consumed") // a valid envelope with a bad message still uses its nonce
			}
		})
	}
	s.expect(s.mfr.sign(t, supply.TypeShip, supply.Ship{To: s.dist.addr, Items: []string{"(01)" + gtin + "(99)X"}}), codes.Invalid)
	s.expect(s.mfr.sign(t, supply.TypeAggregate, supply.Aggregate{SSCC: "106141411234567890", Items: []string{pack("A")}}), codes.Invalid)
	s.expect(s.mfr.sign(t, supply.TypeShip, supply.Ship{To: tx.Address("nothex"), Items: []string{pack("A")}}), codes.Invalid)
}

func TestSupplyDeterminism(t *testing.T) {
	run := func() [][]byte {
		s := newSupplyChain(t)
		sensor := ed25519.NewKeyFromSeed([]byte("sensor key for determinism test!"))
		hot := []supply.Reading{{At: 1, DeciC: 99}}
		s.block(
			s.mfr.sign(t, supply.TypeCommission, supply.Commission{GTIN: gtin, Lot: "L1", Expiry: "2029-12-31", Serials: []string{"A", "B", "C"}}),
			s.mfr.sign(t, supply.TypeRegisterSensor, supply.RegisterSensor{ID: "s1", PubKey: sensor.Public().(ed25519.PublicKey)}),
		)
		s.block(
			s.mfr.sign(t, supply.TypeAggregate, supply.Aggregate{SSCC: sscc, Items: []string{pack("A"), pack("B")}}),
			s.mfr.sign(t, supply.TypeShip, supply.Ship{To: s.dist.addr, Items: []string{"(00)" + sscc, pack("C")}}),
		)
		s.block(s.dist.sign(t, supply.TypeRecordTemperature, supply.RecordTemperature{Shipment: 1, Sensor: "s1", Readings: hot,
			Sig: ed25519.Sign(sensor, supply.TemperatureStatement(chainID, 1, "s1", hot))}))
		s.block(s.dist.sign(t, supply.TypeReceive, supply.Receive{Shipment: 1}), s.mfr.sign(t, supply.TypeRecall, supply.LotAction{GTIN: gtin, Lot: "L1"}))
		return s.hashes
	}
	a, b := run(), run()
	if fmt.Sprintf("%x", a) != fmt.Sprintf("%x", b) {
		t.Fatal("the same supply blocks gave different app hashes")
	}
}
