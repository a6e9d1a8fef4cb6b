package supply

import (
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/gs1"
	"github.com/medchain/medchain/state"
)

// Verification outcomes, in the order they are checked.
const (
	StatusAuthentic          = "authentic"
	StatusSuspectCounterfeit = "suspect_counterfeit" // unknown serial, or lot/expiry not as commissioned
	StatusAlreadyDispensed   = "already_dispensed"
	StatusInactive           = "inactive" // destroyed or decommissioned
	StatusRecalled           = "recalled"
	StatusTempExcursion      = "temperature_excursion"
	StatusQuarantinedLot     = "quarantined"
	StatusExpired            = "expired"
)

// Verification answers "may this pack be dispensed?" for a scanned code.
type Verification struct {
	Status    string     `json:"status"`
	Message   string     `json:"message"`
	EPC       string     `json:"epc"`
	Product   *Product   `json:"product,omitempty"`
	Pack      *Pack      `json:"pack,omitempty"`
	Container *Container `json:"container,omitempty"`
	Lot       *Lot       `json:"lot,omitempty"`
	History   []Event    `json:"history"`
}

var messages = map[string]string{
	StatusAuthentic:          "authentic: commissioned by its manufacturer and may be dispensed",
	StatusSuspectCounterfeit: "SUSPECT COUNTERFEIT: this code does not match a commissioned pack; quarantine it and report it",
	StatusAlreadyDispensed:   "ALREADY DISPENSED: this serial was dispensed before; a second pack with it is suspect",
	StatusInactive:           "INACTIVE: this pack was destroyed or decommissioned",
	StatusRecalled:           "RECALLED: the lot is recalled; do not dispense",
	StatusTempExcursion:      "TEMPERATURE EXCURSION: quarantined until the manufacturer's QA decision",
	StatusQuarantinedLot:     "QUARANTINED: the lot or pack is quarantined; do not dispense",
	StatusExpired:            "EXPIRED: past its expiry date",
}

// Verify checks a scanned code against the chain's state at time at (the caller's clock: a
// query, not part of consensus). A malformed code is an Invalid error.
func Verify(r state.Reader, code string, at time.Time) (*Verification, error) {
	epc, c, err := EPCOf(code)
	if err != nil {
		return nil, err
	}
	v := &Verification{EPC: epc, History: []Event{}}
	it, err := loadItem(r, epc)
	if codes.Of(err) == codes.NotFound {
		return v.set(StatusSuspectCounterfeit), nil
	}
	if err != nil {
		return nil, err
	}
	if v.History, err = it.history(r); err != nil {
		return nil, err
	}
	if it.cont != nil {
		v.Container = it.cont
		return v.set(StatusAuthentic), nil
	}
	v.Pack = it.pack
	if v.Product, err = getProduct(r, it.pack.GTIN); err != nil {
		return nil, err
	}
	if v.Lot, err = getLot(r, it.pack.GTIN, it.pack.Lot); err != nil {
		return nil, err
	}
	if lot := c.Lot(); lot != "" && lot != it.pack.Lot {
		v.Message = "SUSPECT COUNTERFEIT: the lot printed on the pack (" + lot + ") is not the commissioned lot"
		v.Status = StatusSuspectCounterfeit
		return v, nil
	}
	if exp, ok := c.Expiry(); ok && exp.Format(time.DateOnly) != it.pack.Expiry {
		v.Message = "SUSPECT COUNTERFEIT: the expiry printed on the pack is not the commissioned expiry"
		v.Status = StatusSuspectCounterfeit
		return v, nil
	}
	return v.set(verifyPack(r, it.pack, at)), nil
}

func (v *Verification) set(status string) *Verification {
	v.Status, v.Message = status, messages[status]
	return v
}

// verifyPack applies the dispensing rules to a known pack; the dispense transaction uses it too.
func verifyPack(r state.Reader, p *Pack, at time.Time) string {
	switch p.Status {
	case StatusDispensed:
		return StatusAlreadyDispensed
	case StatusDestroyed, StatusDecommissioned:
		return StatusInactive
	}
	lot, err := getLot(r, p.GTIN, p.Lot)
	if err != nil {
		return StatusSuspectCounterfeit
	}
	switch {
	case lot.Recalled:
		return StatusRecalled
	case p.Quarantine == ReasonExcursion:
		return StatusTempExcursion
	case lot.Quarantined || p.Status == StatusQuarantined:
		return StatusQuarantinedLot
	}
	exp, err := time.Parse(time.DateOnly, p.Expiry)
	if err != nil || !at.Before(exp.AddDate(0, 0, 1)) {
		return StatusExpired
	}
	return StatusAuthentic
}

// GetShipment returns a shipment (for queries).
func GetShipment(r state.Reader, id uint64) (*Shipment, error) { return getShipment(r, id) }

// GetProduct returns a product (for queries).
func GetProduct(r state.Reader, gtin string) (*Product, error) {
	if !gs1.ValidGTIN(gtin) {
		return nil, codes.Errorf(codes.Invalid, "gtin %q is not valid", clip(gtin))
	}
	return getProduct(r, gtin)
}
