package supply

import "github.com/medchain/medchain/tx"

// Transaction types.
const (
	TypeRegisterProduct   = "supply/register_product"
	TypeCommission        = "supply/commission"
	TypeAggregate         = "supply/aggregate"
	TypeDisaggregate      = "supply/disaggregate"
	TypeShip              = "supply/ship"
	TypeReceive           = "supply/receive"
	TypeDispense          = "supply/dispense"
	TypeDestroy           = "supply/destroy"
	TypeDecommission      = "supply/decommission"
	TypeRegisterSensor    = "supply/register_sensor"
	TypeRecordTemperature = "supply/record_temperature"
	TypeQADecision        = "supply/qa_decision"
	TypeRecall            = "supply/recall"
	TypeQuarantineLot     = "supply/quarantine_lot"
	TypeReleaseLot        = "supply/release_lot"
)

// RegisterProduct registers a GTIN and its allowed temperature range (tenths of °C).
type RegisterProduct struct {
	GTIN     string `json:"gtin"`
	Name     string `json:"name"`
	MinDeciC int32  `json:"min_temp_deci_c"`
	MaxDeciC int32  `json:"max_temp_deci_c"`
}

// Commission creates serialized packs of one lot.
type Commission struct {
	GTIN    string   `json:"gtin"`
	Lot     string   `json:"lot"`
	Expiry  string   `json:"expiry"` // YYYY-MM-DD
	Serials []string `json:"serials"`
}

// Aggregate packs items (GS1 codes of packs or containers) into a new container.
type Aggregate struct {
	SSCC  string   `json:"sscc"`
	Items []string `json:"items"`
}

// Disaggregate unpacks a container.
type Disaggregate struct {
	SSCC string `json:"sscc"`
}

// Ship sends top-level items (GS1 codes) to a recipient. Return marks a return to the
// manufacturer, the only way quarantined or recalled stock may move.
type Ship struct {
	To     tx.Address `json:"to"`
	Items  []string   `json:"items"`
	Return bool       `json:"return,omitempty"`
}

// Receive accepts a pending shipment addressed to the signer.
type Receive struct {
	Shipment uint64 `json:"shipment"`
}

// Items names items by GS1 code, for dispense, destroy and decommission.
type Items struct {
	Items  []string `json:"items"`
	Reason string   `json:"reason,omitempty"`
}

// RegisterSensor registers a temperature logger's Ed25519 key.
type RegisterSensor struct {
	ID     string `json:"id"`
	PubKey []byte `json:"pub_key"`
}

// Reading is one temperature reading.
type Reading struct {
	At    int64 `json:"at"` // unix seconds, as the sensor logged it
	DeciC int32 `json:"deci_c"`
}

// RecordTemperature carries a sensor's signed readings for a shipment in transit.
type RecordTemperature struct {
	Shipment uint64    `json:"shipment"`
	Sensor   string    `json:"sensor"`
	Readings []Reading `json:"readings"`
	Sig      []byte    `json:"sig"`
}

// QADecision is the manufacturer's decision on packs quarantined by an excursion.
type QADecision struct {
	Items    []string `json:"items"`
	Decision string   `json:"decision"` // release or destroy
}

// LotAction recalls, quarantines or releases a lot.
type LotAction struct {
	GTIN   string `json:"gtin"`
	Lot    string `json:"lot"`
	Reason string `json:"reason,omitempty"`
}
