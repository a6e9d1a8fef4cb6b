package supply

import (
	"crypto/ed25519"
	"encoding/json"
	"strconv"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/state"
)

// TemperatureStatement is what a sensor signs: bound to the chain, the shipment and the sensor.
func TemperatureStatement(chainID string, shipment uint64, sensor string, readings []Reading) []byte {
	body, _ := json.Marshal(readings) // a slice of plain structs always encodes
	return []byte("medchain/temperature/v1\n" + chainID + "\n" + strconv.FormatUint(shipment, 10) + "\n" + sensor + "\n" + string(body))
}

func registerSensor(kv state.KV, ctx contracts.Context, m *RegisterSensor) ([]contracts.Event, error) {
	if _, err := identity.RequireOrg(kv, ctx.Signer, ctx.Time, identity.OrgKinds...); err != nil {
		return nil, err
	}
	if err := contracts.Token("sensor id", m.ID, 64); err != nil {
		return nil, err
	}
	if len(m.PubKey) != ed25519.PublicKeySize {
		return nil, codes.Errorf(codes.Invalid, "pub_key must be a 32-byte Ed25519 key")
	}
	var existing Sensor
	if ok, err := contracts.GetJSON(kv, SensorKey(m.ID), &existing); err != nil {
		return nil, err
	} else if ok {
		return nil, codes.Errorf(codes.AlreadyExists, "sensor %s is registered", m.ID)
	}
	s := Sensor{ID: m.ID, Owner: ctx.Signer, PubKey: m.PubKey}
	return []contracts.Event{event("sensor_registered", "sensor", m.ID)}, contracts.PutJSON(kv, SensorKey(m.ID), &s)
}

// recordTemperature stores a sensor's signed readings for a shipment in transit. A reading
// outside a product's allowed range quarantines that product's packs in the shipment until the
// manufacturer's QA decision.
func recordTemperature(kv state.KV, ctx contracts.Context, m *RecordTemperature) ([]contracts.Event, error) {
	if len(m.Readings) == 0 || len(m.Readings) > maxReadingsPerT {
		return nil, codes.Errorf(codes.Invalid, "1..%d readings per transaction", maxReadingsPerT)
	}
	var sensor Sensor
	if ok, err := contracts.GetJSON(kv, SensorKey(m.Sensor), &sensor); err != nil {
		return nil, err
	} else if !ok {
		return nil, codes.Errorf(codes.NotFound, "sensor %q is not registered", clip(m.Sensor))
	}
	if !ed25519.Verify(sensor.PubKey, TemperatureStatement(ctx.ChainID, m.Shipment, m.Sensor, m.Readings), m.Sig) {
		return nil, codes.Errorf(codes.BadSignature, "readings are not signed by sensor %s", m.Sensor)
	}
	s, err := getShipment(kv, m.Shipment)
	if err != nil {
		return nil, err
	}
	if ctx.Signer != sensor.Owner && ctx.Signer != s.From && ctx.Signer != s.To {
		return nil, codes.Errorf(codes.Unauthorized, "only the sensor's owner or a party to the shipment submits readings")
	}
	if s.Status != "pending" {
		return nil, codes.Errorf(codes.Invalid, "shipment %d is %s", s.ID, s.Status)
	}
	// The worst reading per direction decides; products are looked up once each.
	lo, hi := m.Readings[0], m.Readings[0]
	for _, r := range m.Readings {
		if r.DeciC < -2730 || r.DeciC > 2000 {
			return nil, codes.Errorf(codes.Invalid, "reading %d is not a plausible temperature", r.DeciC)
		}
		if r.DeciC < lo.DeciC {
			lo = r
		}
		if r.DeciC > hi.DeciC {
			hi = r
		}
	}
	s.Readings += len(m.Readings)
	if s.MinDeciC == nil || lo.DeciC < *s.MinDeciC {
		s.MinDeciC = &lo.DeciC
	}
	if s.MaxDeciC == nil || hi.DeciC > *s.MaxDeciC {
		s.MaxDeciC = &hi.DeciC
	}
	products := map[string]*Product{}
	quarantined := 0
	for _, epc := range s.Items {
		err := walk(kv, epc, func(it *item) error {
			if it.pack == nil || it.pack.Status == StatusQuarantined {
				return nil
			}
			p := products[it.pack.GTIN]
			if p == nil {
				var err error
				if p, err = getProduct(kv, it.pack.GTIN); err != nil {
					return err
				}
				products[it.pack.GTIN] = p
			}
			bad := lo
			if lo.DeciC >= p.MinDeciC {
				bad = hi
			}
			if bad.DeciC >= p.MinDeciC && bad.DeciC <= p.MaxDeciC {
				return nil
			}
			quarantined++
			it.pack.PrevStatus, it.pack.Status, it.pack.Quarantine = it.pack.Status, StatusQuarantined, ReasonExcursion
			t := bad.DeciC
			return it.addEvent(kv, Event{Type: "ObjectEvent", Action: "OBSERVE", BizStep: "sensor_reporting",
				Disposition: "non_sellable_other", Time: ctx.Time, Height: ctx.Height, Actor: ctx.Signer,
				Shipment: s.ID, Reason: ReasonExcursion, DeciC: &t})
		})
		if err != nil {
			return nil, err
		}
	}
	if quarantined > 0 {
		s.Excursion = true
	}
	return []contracts.Event{event("temperature_recorded", "shipment", strconv.FormatUint(s.ID, 10),
		"readings", strconv.Itoa(len(m.Readings)), "quarantined", strconv.Itoa(quarantined))}, contracts.PutJSON(kv, ShipmentKey(s.ID), s)
}

// qaDecision releases or destroys packs quarantined by a temperature excursion; only the
// product's manufacturer decides.
func qaDecision(kv state.KV, ctx contracts.Context, m *QADecision) ([]contracts.Event, error) {
	if m.Decision != "release" && m.Decision != "destroy" {
		return nil, codes.Errorf(codes.Invalid, "decision must be release or destroy")
	}
	epcs, err := resolve(m.Items)
	if err != nil {
		return nil, err
	}
	for _, epc := range epcs {
		it, err := loadItem(kv, epc)
		if err != nil {
			return nil, err
		}
		if it.pack == nil || it.pack.Status != StatusQuarantined || it.pack.Quarantine != ReasonExcursion {
			return nil, codes.Errorf(codes.Invalid, "%s is not quarantined by a temperature excursion", epc)
		}
		p, err := getProduct(kv, it.pack.GTIN)
		if err != nil {
			return nil, err
		}
		if p.Manufacturer != ctx.Signer {
			return nil, codes.Errorf(codes.Unauthorized, "only the manufacturer of %s decides on its quarantine", it.pack.GTIN)
		}
		disposition := "destroyed"
		if m.Decision == "release" {
			it.pack.Status, disposition = it.pack.PrevStatus, "active"
		} else {
			it.pack.Status = StatusDestroyed
		}
		it.pack.PrevStatus, it.pack.Quarantine = "", ""
		if err := it.addEvent(kv, Event{Type: "ObjectEvent", Action: "OBSERVE", BizStep: "inspecting", Disposition: disposition,
			Time: ctx.Time, Height: ctx.Height, Actor: ctx.Signer, Reason: "qa_" + m.Decision}); err != nil {
			return nil, err
		}
	}
	return []contracts.Event{event("qa_decision", "decision", m.Decision, "count", strconv.Itoa(len(epcs)))}, nil
}

// lotAuthority loads a lot and checks the signer is its manufacturer or an attested regulator.
func lotAuthority(kv state.KV, ctx contracts.Context, m *LotAction) (*Lot, error) {
	if err := contracts.Text("reason", m.Reason, 0, 256); err != nil {
		return nil, err
	}
	lot, err := getLot(kv, m.GTIN, m.Lot)
	if err != nil {
		return nil, err
	}
	p, err := getProduct(kv, m.GTIN)
	if err != nil {
		return nil, err
	}
	if p.Manufacturer != ctx.Signer {
		if _, err := identity.RequireOrg(kv, ctx.Signer, ctx.Time, "regulator"); err != nil {
			return nil, codes.Errorf(codes.Unauthorized, "only the manufacturer or a regulator acts on a lot")
		}
	}
	t := ctx.Time
	lot.By, lot.At = ctx.Signer, &t
	return lot, nil
}

func recall(kv state.KV, ctx contracts.Context, m *LotAction) ([]contracts.Event, error) {
	lot, err := lotAuthority(kv, ctx, m)
	if err != nil {
		return nil, err
	}
	lot.Recalled, lot.Reason = true, m.Reason
	return []contracts.Event{event("lot_recalled", "gtin", m.GTIN, "lot", m.Lot)}, contracts.PutJSON(kv, LotKey(m.GTIN, m.Lot), lot)
}

func quarantineLot(kv state.KV, ctx contracts.Context, m *LotAction) ([]contracts.Event, error) {
	lot, err := lotAuthority(kv, ctx, m)
	if err != nil {
		return nil, err
	}
	lot.Quarantined, lot.Reason = true, m.Reason
	return []contracts.Event{event("lot_quarantined", "gtin", m.GTIN, "lot", m.Lot)}, contracts.PutJSON(kv, LotKey(m.GTIN, m.Lot), lot)
}

func releaseLot(kv state.KV, ctx contracts.Context, m *LotAction) ([]contracts.Event, error) {
	lot, err := lotAuthority(kv, ctx, m)
	if err != nil {
		return nil, err
	}
	if lot.Recalled {
		return nil, codes.Errorf(codes.Invalid, "a recalled lot is not released")
	}
	lot.Quarantined, lot.Reason = false, m.Reason
	return []contracts.Event{event("lot_released", "gtin", m.GTIN, "lot", m.Lot)}, contracts.PutJSON(kv, LotKey(m.GTIN, m.Lot), lot)
}
