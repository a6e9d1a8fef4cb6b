// Package supply traces serialized medicine packs from manufacturer to dispensing, modelled on
// GS1 EPCIS 2.0 and the DSCSA's verify-before-dispense: products (GTIN) with an allowed
// temperature range, packs (GTIN + serial, lot, expiry) commissioned by their manufacturer,
// aggregation into cases and pallets (SSCC), shipments between custodians, receipt, dispensing,
// returns, destruction, signed cold-chain readings that quarantine packs on an excursion until
// the manufacturer's QA decision, lot recall and quarantine, and verification of a scanned code.
// Temperatures are integers in tenths of a degree Celsius: no floats in the state machine.
package supply

import (
	"time"

	"github.com/medchain/medchain/tx"
)

// Pack and container statuses.
const (
	StatusActive         = "active"
	StatusInTransit      = "in_transit"
	StatusDispensed      = "dispensed"
	StatusDestroyed      = "destroyed"
	StatusDecommissioned = "decommissioned"
	StatusQuarantined    = "quarantined"
	StatusUnpacked       = "unpacked" // a container after disaggregation
)

// Quarantine reasons.
const ReasonExcursion = "temperature_excursion"

// Product is a GTIN registered by its manufacturer.
type Product struct {
	GTIN         string     `json:"gtin"`
	Name         string     `json:"name"`
	Manufacturer tx.Address `json:"manufacturer"`
	MinDeciC     int32      `json:"min_temp_deci_c"` // allowed storage range, tenths of °C
	MaxDeciC     int32      `json:"max_temp_deci_c"`
}

// Pack is one serialized saleable unit.
type Pack struct {
	GTIN       string     `json:"gtin"`
	Serial     string     `json:"serial"`
	Lot        string     `json:"lot"`
	Expiry     string     `json:"expiry"` // YYYY-MM-DD
	Status     string     `json:"status"`
	Custodian  tx.Address `json:"custodian"`
	Parent     string     `json:"parent,omitempty"`   // SSCC of the container holding it
	Shipment   uint64     `json:"shipment,omitempty"` // while in transit
	Quarantine string     `json:"quarantine,omitempty"`
	PrevStatus string     `json:"prev_status,omitempty"` // status to restore on QA release
	Events     uint64     `json:"events"`
}

// Container is a case or pallet identified by an SSCC.
type Container struct {
	SSCC      string     `json:"sscc"`
	Status    string     `json:"status"`
	Custodian tx.Address `json:"custodian"`
	Children  []string   `json:"children"` // EPC keys (see epcKey)
	Parent    string     `json:"parent,omitempty"`
	Shipment  uint64     `json:"shipment,omitempty"`
	Events    uint64     `json:"events"`
}

// Lot holds lot-wide state: recall and quarantine.
type Lot struct {
	GTIN        string     `json:"gtin"`
	Lot         string     `json:"lot"`
	Expiry      string     `json:"expiry"`
	Recalled    bool       `json:"recalled,omitempty"`
	Quarantined bool       `json:"quarantined,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	By          tx.Address `json:"by,omitempty"`
	At          *time.Time `json:"at,omitempty"`
}

// Shipment moves items from one custodian to a named recipient.
type Shipment struct {
	ID        uint64     `json:"id"`
	From      tx.Address `json:"from"`
	To        tx.Address `json:"to"`
	Items     []string   `json:"items"` // top-level EPC keys
	Return    bool       `json:"return,omitempty"`
	Status    string     `json:"status"` // pending, received
	ShippedAt time.Time  `json:"shipped_at"`
	Readings  int        `json:"readings"`
	MinDeciC  *int32     `json:"min_temp_deci_c,omitempty"`
	MaxDeciC  *int32     `json:"max_temp_deci_c,omitempty"`
	Excursion bool       `json:"excursion,omitempty"`
}

// Sensor is a registered temperature logger whose key signs readings.
type Sensor struct {
	ID     string     `json:"id"`
	Owner  tx.Address `json:"owner"`
	PubKey []byte     `json:"pub_key"`
}

// Event is one EPCIS-style event in an item's history.
type Event struct {
	Seq         uint64     `json:"seq"`
	Type        string     `json:"type"`   // ObjectEvent or AggregationEvent
	Action      string     `json:"action"` // ADD, OBSERVE, DELETE
	BizStep     string     `json:"biz_step"`
	Disposition string     `json:"disposition"`
	Time        time.Time  `json:"time"`
	Height      int64      `json:"height"`
	Actor       tx.Address `json:"actor"`
	Source      tx.Address `json:"source,omitempty"`
	Destination tx.Address `json:"destination,omitempty"`
	Parent      string     `json:"parent,omitempty"` // SSCC, for aggregation
	Shipment    uint64     `json:"shipment,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	Lot         string     `json:"lot,omitempty"`
	Expiry      string     `json:"expiry,omitempty"`
	DeciC       *int32     `json:"temp_deci_c,omitempty"`
}
