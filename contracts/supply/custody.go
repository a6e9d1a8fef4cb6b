package supply

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/gs1"
	"github.com/medchain/medchain/state"
)

// Handles reports whether typ is a supply transaction.
func Handles(typ string) bool { return handlers[typ] != nil }

var handlers map[string]contracts.Handler

func init() {
	handlers = map[string]contracts.Handler{
		TypeRegisterProduct: contracts.Decode(registerProduct), TypeCommission: contracts.Decode(commission),
		TypeAggregate: contracts.Decode(aggregate), TypeDisaggregate: contracts.Decode(disaggregate),
		TypeShip: contracts.Decode(ship), TypeReceive: contracts.Decode(receive), TypeDispense: contracts.Decode(dispense),
		TypeDestroy: contracts.Decode(destroy), TypeDecommission: contracts.Decode(decommission),
		TypeRegisterSensor: contracts.Decode(registerSensor), TypeRecordTemperature: contracts.Decode(recordTemperature),
		TypeQADecision: contracts.Decode(qaDecision), TypeRecall: contracts.Decode(recall),
		TypeQuarantineLot: contracts.Decode(quarantineLot), TypeReleaseLot: contracts.Decode(releaseLot),
	}
}

// Deliver executes a supply transaction.
func Deliver(kv state.KV, ctx contracts.Context, typ string, raw json.RawMessage) ([]contracts.Event, error) {
	h := handlers[typ]
	if h == nil {
		return nil, codes.Errorf(codes.UnknownType, "supply has no transaction %q", typ)
	}
	return h(kv, ctx, raw)
}

func event(typ string, kv ...string) contracts.Event { return contracts.NewEvent("supply."+typ, kv...) }

func registerProduct(kv state.KV, ctx contracts.Context, m *RegisterProduct) ([]contracts.Event, error) {
	if _, err := identity.RequireOrg(kv, ctx.Signer, ctx.Time, "manufacturer"); err != nil {
		return nil, err
	}
	if !gs1.ValidGTIN(m.GTIN) {
		return nil, codes.Errorf(codes.Invalid, "gtin %q is not 14 digits with a valid check digit", clip(m.GTIN))
	}
	if err := contracts.Text("name", m.Name, 1, 128); err != nil {
		return nil, err
	}
	if m.MinDeciC >= m.MaxDeciC || m.MinDeciC < -1000 || m.MaxDeciC > 1000 {
		return nil, codes.Errorf(codes.Invalid, "temperature range must be min < max within -100.0..100.0 °C (tenths)")
	}
	if _, err := getProduct(kv, m.GTIN); err == nil {
		return nil, codes.Errorf(codes.AlreadyExists, "product %s is registered", m.GTIN)
	}
	p := Product{GTIN: m.GTIN, Name: m.Name, Manufacturer: ctx.Signer, MinDeciC: m.MinDeciC, MaxDeciC: m.MaxDeciC}
	return []contracts.Event{event("product_registered", "gtin", m.GTIN)}, contracts.PutJSON(kv, ProductKey(m.GTIN), &p)
}

// checkText checks a lot or serial: 1..20 characters of GS1 character set 82.
func checkText(field, v string) error {
	if !gs1.ValidText(v, 20) {
		return codes.Errorf(codes.Invalid, "%s %q must be 1..20 characters of the GS1 character set", field, clip(v))
	}
	return nil
}

func commission(kv state.KV, ctx contracts.Context, m *Commission) ([]contracts.Event, error) {
	p, err := getProduct(kv, m.GTIN)
	if err != nil {
		return nil, err
	}
	if p.Manufacturer != ctx.Signer {
		return nil, codes.Errorf(codes.Unauthorized, "only the product's manufacturer commissions its packs")
	}
	if err := checkText("lot", m.Lot); err != nil {
		return nil, err
	}
	if _, err := time.Parse(time.DateOnly, m.Expiry); err != nil {
		return nil, codes.Errorf(codes.Invalid, "expiry must be YYYY-MM-DD")
	}
	if len(m.Serials) == 0 || len(m.Serials) > maxItemsPerTx {
		return nil, codes.Errorf(codes.Invalid, "1..%d serials per commission", maxItemsPerTx)
	}
	lot, err := getLot(kv, m.GTIN, m.Lot)
	switch {
	case codes.Of(err) == codes.NotFound:
		lot = &Lot{GTIN: m.GTIN, Lot: m.Lot, Expiry: m.Expiry}
		if err := contracts.PutJSON(kv, LotKey(m.GTIN, m.Lot), lot); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case lot.Expiry != m.Expiry:
		return nil, codes.Errorf(codes.Invalid, "lot %s was commissioned with expiry %s", m.Lot, lot.Expiry)
	}
	for _, serial := range m.Serials {
		if err := checkText("serial", serial); err != nil {
			return nil, err
		}
		epc := PackKey(m.GTIN, serial)
		if _, err := loadItem(kv, epc); err == nil {
			return nil, codes.Errorf(codes.AlreadyExists, "serial %s of %s exists", serial, m.GTIN)
		}
		it := &item{epc: epc, pack: &Pack{GTIN: m.GTIN, Serial: serial, Lot: m.Lot, Expiry: m.Expiry,
			Status: StatusActive, Custodian: ctx.Signer}}
		if err := it.addEvent(kv, Event{Type: "ObjectEvent", Action: "ADD", BizStep: "commissioning", Disposition: "active",
			Time: ctx.Time, Height: ctx.Height, Actor: ctx.Signer, Lot: m.Lot, Expiry: m.Expiry}); err != nil {
			return nil, err
		}
	}
	return []contracts.Event{event("commissioned", "gtin", m.GTIN, "lot", m.Lot, "count", strconv.Itoa(len(m.Serials)))}, nil
}

// resolve parses item codes into EPC keys, refusing duplicates and oversize lists.
func resolve(codesIn []string) ([]string, error) {
	if len(codesIn) == 0 || len(codesIn) > maxItemsPerTx {
		return nil, codes.Errorf(codes.Invalid, "1..%d items per transaction", maxItemsPerTx)
	}
	out := make([]string, 0, len(codesIn))
	for _, c := range codesIn {
		epc, _, err := EPCOf(c)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, epc) {
			return nil, codes.Errorf(codes.Invalid, "item %s listed twice", epc)
		}
		out = append(out, epc)
	}
	return out, nil
}

// ownTopLevel loads an item the signer holds, not inside a container, in one of the statuses.
func ownTopLevel(kv state.KV, ctx contracts.Context, epc string, statuses ...string) (*item, error) {
	it, err := loadItem(kv, epc)
	if err != nil {
		return nil, err
	}
	if *it.custodian() != string(ctx.Signer) {
		return nil, codes.Errorf(codes.Unauthorized, "%s is not in the signer's custody", epc)
	}
	if *it.parent() != "" {
		return nil, codes.Errorf(codes.Invalid, "%s is inside container %s: unpack it first", epc, *it.parent())
	}
	if !slices.Contains(statuses, *it.status()) {
		return nil, codes.Errorf(codes.Invalid, "%s is %s", epc, *it.status())
	}
	return it, nil
}

func aggregate(kv state.KV, ctx contracts.Context, m *Aggregate) ([]contracts.Event, error) {
	if !gs1.ValidSSCC(m.SSCC) {
		return nil, codes.Errorf(codes.Invalid, "sscc %q is not 18 digits with a valid check digit", clip(m.SSCC))
	}
	cepc := ContainerKey(m.SSCC)
	if _, err := loadItem(kv, cepc); err == nil {
		return nil, codes.Errorf(codes.AlreadyExists, "container %s exists", m.SSCC)
	}
	children, err := resolve(m.Items)
	if err != nil {
		return nil, err
	}
	cont := &item{epc: cepc, cont: &Container{SSCC: m.SSCC, Status: StatusActive, Custodian: ctx.Signer, Children: children}}
	for _, c := range children {
		it, err := ownTopLevel(kv, ctx, c, StatusActive)
		if err != nil {
			return nil, err
		}
		*it.parent() = m.SSCC
		if err := it.addEvent(kv, Event{Type: "AggregationEvent", Action: "ADD", BizStep: "packing", Disposition: "in_progress",
			Time: ctx.Time, Height: ctx.Height, Actor: ctx.Signer, Parent: m.SSCC}); err != nil {
			return nil, err
		}
	}
	err = cont.addEvent(kv, Event{Type: "AggregationEvent", Action: "ADD", BizStep: "packing", Disposition: "in_progress",
		Time: ctx.Time, Height: ctx.Height, Actor: ctx.Signer, Parent: m.SSCC})
	return []contracts.Event{event("aggregated", "sscc", m.SSCC, "count", strconv.Itoa(len(children)))}, err
}

func disaggregate(kv state.KV, ctx contracts.Context, m *Disaggregate) ([]contracts.Event, error) {
	cont, err := ownTopLevel(kv, ctx, ContainerKey(m.SSCC), StatusActive)
	if err != nil {
		return nil, err
	}
	for _, c := range cont.cont.Children {
		it, err := loadItem(kv, c)
		if err != nil {
			return nil, err
		}
		*it.parent() = ""
		if err := it.addEvent(kv, Event{Type: "AggregationEvent", Action: "DELETE", BizStep: "unpacking", Disposition: "active",
			Time: ctx.Time, Height: ctx.Height, Actor: ctx.Signer, Parent: m.SSCC}); err != nil {
			return nil, err
		}
	}
	cont.cont.Status = StatusUnpacked
	err = cont.addEvent(kv, Event{Type: "AggregationEvent", Action: "DELETE", BizStep: "unpacking", Disposition: "inactive",
		Time: ctx.Time, Height: ctx.Height, Actor: ctx.Signer, Parent: m.SSCC})
	return []contracts.Event{event("disaggregated", "sscc", m.SSCC)}, err
}

// lotBlocked reports why a pack's lot may not move or be dispensed ("" if it may).
func lotBlocked(r state.Reader, p *Pack) (string, error) {
	lot, err := getLot(r, p.GTIN, p.Lot)
	if err != nil {
		return "", err
	}
	switch {
	case lot.Recalled:
		return "recalled", nil
	case lot.Quarantined:
		return "quarantined", nil
	}
	return "", nil
}

func ship(kv state.KV, ctx contracts.Context, m *Ship) ([]contracts.Event, error) {
	if err := m.To.Validate(); err != nil {
		return nil, err
	}
	to, err := identity.GetAccount(kv, m.To)
	if err != nil {
		return nil, err
	}
	if to.Role != identity.RoleOrganization || m.To == ctx.Signer {
		return nil, codes.Errorf(codes.Invalid, "shipments go to another organization")
	}
	epcs, err := resolve(m.Items)
	if err != nil {
		return nil, err
	}
	id, err := contracts.NextSeq(kv, []byte(keyShipmentSeq))
	if err != nil {
		return nil, err
	}
	bizStep := "shipping"
	allowed := []string{StatusActive}
	if m.Return {
		bizStep = "returning"
		allowed = append(allowed, StatusQuarantined)
	}
	for _, epc := range epcs {
		if _, err := ownTopLevel(kv, ctx, epc, allowed...); err != nil {
			return nil, err
		}
		err := walk(kv, epc, func(it *item) error {
			if it.pack != nil {
				if err := checkMovable(kv, it.pack, m); err != nil {
					return err
				}
			}
			if *it.status() == StatusActive {
				*it.status() = StatusInTransit
			}
			*it.shipment() = id
			return it.addEvent(kv, Event{Type: "ObjectEvent", Action: "OBSERVE", BizStep: bizStep, Disposition: "in_transit",
				Time: ctx.Time, Height: ctx.Height, Actor: ctx.Signer, Source: ctx.Signer, Destination: m.To, Shipment: id})
		})
		if err != nil {
			return nil, err
		}
	}
	s := Shipment{ID: id, From: ctx.Signer, To: m.To, Items: epcs, Return: m.Return, Status: "pending", ShippedAt: ctx.Time}
	return []contracts.Event{event("shipped", "shipment", strconv.FormatUint(id, 10), "to", string(m.To))},
		contracts.PutJSON(kv, ShipmentKey(id), &s)
}

// checkMovable refuses to ship a pack of a recalled or quarantined lot, or a quarantined pack,
// except as a return to its manufacturer.
func checkMovable(r state.Reader, p *Pack, m *Ship) error {
	blocked, err := lotBlocked(r, p)
	if err != nil {
		return err
	}
	if p.Status == StatusQuarantined && blocked == "" {
		blocked = "quarantined"
	}
	if blocked == "" {
		return nil
	}
	prod, err := getProduct(r, p.GTIN)
	if err != nil {
		return err
	}
	if !m.Return || prod.Manufacturer != m.To {
		return codes.Errorf(codes.Invalid, "pack %s is %s: it may only be returned to its manufacturer", p.Serial, blocked)
	}
	return nil
}

func receive(kv state.KV, ctx contracts.Context, m *Receive) ([]contracts.Event, error) {
	s, err := getShipment(kv, m.Shipment)
	if err != nil {
		return nil, err
	}
	if s.To != ctx.Signer {
		return nil, codes.Errorf(codes.Unauthorized, "shipment %d is addressed to %s", s.ID, s.To)
	}
	if s.Status != "pending" {
		return nil, codes.Errorf(codes.Invalid, "shipment %d is %s", s.ID, s.Status)
	}
	for _, epc := range s.Items {
		err := walk(kv, epc, func(it *item) error {
			*it.custodian() = string(ctx.Signer)
			*it.shipment() = 0
			if *it.status() == StatusInTransit {
				*it.status() = StatusActive
			}
			if it.pack != nil && it.pack.PrevStatus == StatusInTransit {
				it.pack.PrevStatus = StatusActive
			}
			return it.addEvent(kv, Event{Type: "ObjectEvent", Action: "OBSERVE", BizStep: "receiving", Disposition: *it.status(),
				Time: ctx.Time, Height: ctx.Height, Actor: ctx.Signer, Source: s.From, Destination: ctx.Signer, Shipment: s.ID})
		})
		if err != nil {
			return nil, err
		}
	}
	s.Status = "received"
	return []contracts.Event{event("received", "shipment", strconv.FormatUint(s.ID, 10))}, contracts.PutJSON(kv, ShipmentKey(s.ID), s)
}

func dispense(kv state.KV, ctx contracts.Context, m *Items) ([]contracts.Event, error) {
	if _, err := identity.RequireOrg(kv, ctx.Signer, ctx.Time, "pharmacy", "hospital"); err != nil {
		return nil, err
	}
	epcs, err := resolve(m.Items)
	if err != nil {
		return nil, err
	}
	for _, epc := range epcs {
		if isContainerKey(epc) {
			return nil, codes.Errorf(codes.Invalid, "dispense packs, not containers")
		}
		it, err := loadItem(kv, epc)
		if err != nil {
			return nil, err
		}
		// The same rules as verify-before-dispense, enforced by the chain.
		v := verifyPack(kv, it.pack, ctx.Time)
		if v != StatusAuthentic {
			return nil, codes.Errorf(codes.Invalid, "pack %s cannot be dispensed: %s", it.pack.Serial, v)
		}
		if _, err := ownTopLevel(kv, ctx, epc, StatusActive); err != nil {
			return nil, err
		}
		it.pack.Status = StatusDispensed
		if err := it.addEvent(kv, Event{Type: "ObjectEvent", Action: "OBSERVE", BizStep: "dispensing", Disposition: "dispensed",
			Time: ctx.Time, Height: ctx.Height, Actor: ctx.Signer}); err != nil {
			return nil, err
		}
	}
	return []contracts.Event{event("dispensed", "count", strconv.Itoa(len(epcs)))}, nil
}

func destroy(kv state.KV, ctx contracts.Context, m *Items) ([]contracts.Event, error) {
	return endOfLife(kv, ctx, m, StatusDestroyed, "destroying")
}

func decommission(kv state.KV, ctx contracts.Context, m *Items) ([]contracts.Event, error) {
	return endOfLife(kv, ctx, m, StatusDecommissioned, "decommissioning")
}

// endOfLife destroys or decommissions items the signer holds (containers with their contents).
func endOfLife(kv state.KV, ctx contracts.Context, m *Items, status, bizStep string) ([]contracts.Event, error) {
	if err := contracts.Text("reason", m.Reason, 0, 256); err != nil {
		return nil, err
	}
	epcs, err := resolve(m.Items)
	if err != nil {
		return nil, err
	}
	for _, epc := range epcs {
		if _, err := ownTopLevel(kv, ctx, epc, StatusActive, StatusQuarantined); err != nil {
			return nil, err
		}
		err := walk(kv, epc, func(it *item) error {
			*it.status() = status
			return it.addEvent(kv, Event{Type: "ObjectEvent", Action: "DELETE", BizStep: bizStep, Disposition: status,
				Time: ctx.Time, Height: ctx.Height, Actor: ctx.Signer, Reason: m.Reason})
		})
		if err != nil {
			return nil, err
		}
	}
	return []contracts.Event{event(status, "count", strconv.Itoa(len(epcs)))}, nil
}
