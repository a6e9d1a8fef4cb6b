package supply

import (
	"net/url"
	"strings"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/gs1"
	"github.com/medchain/medchain/state"
)

// State keys, all under "sc/". An item's EPC key is "01/<gtin>/21/<escaped serial>" for a pack
// and "00/<sscc>" for a container; serials are path-escaped so '/' cannot forge a key.
const (
	prefixProduct   = "sc/prod/"
	prefixItem      = "sc/item/"
	prefixEvent     = "sc/ev/"
	prefixLot       = "sc/lot/"
	prefixShipment  = "sc/ship/"
	prefixSensor    = "sc/sensor/"
	keyShipmentSeq  = "sc/seq/ship"
	maxItemsPerTx   = 1000
	maxReadingsPerT = 500
)

// PackKey is the EPC key of a pack.
func PackKey(gtin, serial string) string { return "01/" + gtin + "/21/" + url.PathEscape(serial) }

// ContainerKey is the EPC key of a container.
func ContainerKey(sscc string) string { return "00/" + sscc }

// ItemKey is the state key of an item (pack or container).
func ItemKey(epc string) []byte { return []byte(prefixItem + epc) }

// EventPrefix is the key prefix of an item's events.
func EventPrefix(epc string) []byte { return []byte(prefixEvent + epc + "/") }

// ProductKey, LotKey, ShipmentKey and SensorKey are state keys.
func ProductKey(gtin string) []byte  { return []byte(prefixProduct + gtin) }
func LotKey(gtin, lot string) []byte { return []byte(prefixLot + gtin + "/" + url.PathEscape(lot)) }
func ShipmentKey(id uint64) []byte   { return []byte(prefixShipment + contracts.SeqKey(id)) }
func SensorKey(id string) []byte     { return []byte(prefixSensor + id) }
func isContainerKey(epc string) bool { return strings.HasPrefix(epc, "00/") }
func eventKey(epc string, seq uint64) []byte {
	return append(EventPrefix(epc), contracts.SeqKey(seq)...)
}

// EPCOf turns a scanned or typed GS1 code into an item's EPC key: a pack needs GTIN and
// serial, a container its SSCC.
func EPCOf(code string) (string, *gs1.Code, error) {
	c, err := gs1.Parse(code)
	if err != nil {
		return "", nil, codes.Errorf(codes.Invalid, "%v", err)
	}
	switch {
	case c.SSCC() != "":
		return ContainerKey(c.SSCC()), c, nil
	case c.GTIN() != "" && c.Serial() != "":
		return PackKey(c.GTIN(), c.Serial()), c, nil
	}
	return "", nil, codes.Errorf(codes.Invalid, "code %q names no pack (01 + 21) or container (00)", clip(code))
}

// item is a pack or a container, loaded for a rule to inspect and change.
type item struct {
	epc  string
	pack *Pack
	cont *Container
}

func loadItem(r state.Reader, epc string) (*item, error) {
	it := &item{epc: epc}
	var v any = &it.pack
	if isContainerKey(epc) {
		v = &it.cont
	}
	ok, err := contracts.GetJSON(r, ItemKey(epc), v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, codes.Errorf(codes.NotFound, "no item %s", epc)
	}
	return it, nil
}

func (it *item) save(kv state.KV) error {
	if it.cont != nil {
		return contracts.PutJSON(kv, ItemKey(it.epc), it.cont)
	}
	return contracts.PutJSON(kv, ItemKey(it.epc), it.pack)
}

func (it *item) status() *string {
	if it.cont != nil {
		return &it.cont.Status
	}
	return &it.pack.Status
}

func (it *item) custodian() *string {
	if it.cont != nil {
		return (*string)(&it.cont.Custodian)
	}
	return (*string)(&it.pack.Custodian)
}

func (it *item) parent() *string {
	if it.cont != nil {
		return &it.cont.Parent
	}
	return &it.pack.Parent
}

func (it *item) shipment() *uint64 {
	if it.cont != nil {
		return &it.cont.Shipment
	}
	return &it.pack.Shipment
}

// addEvent appends e to the item's history (numbering it) and saves the item.
func (it *item) addEvent(kv state.KV, e Event) error {
	var n *uint64
	if it.cont != nil {
		n = &it.cont.Events
	} else {
		n = &it.pack.Events
	}
	*n++
	e.Seq = *n
	if err := contracts.PutJSON(kv, eventKey(it.epc, e.Seq), &e); err != nil {
		return err
	}
	return it.save(kv)
}

// walk calls fn for the item and, depth first, everything it contains.
func walk(kv state.KV, epc string, fn func(*item) error) error {
	it, err := loadItem(kv, epc)
	if err != nil {
		return err
	}
	if err := fn(it); err != nil {
		return err
	}
	if it.cont != nil {
		for _, child := range it.cont.Children {
			if err := walk(kv, child, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// History returns an item's events in order. It reads them by key (the item counts its events),
// which is far cheaper than opening a range iterator on the hot verification path.
func History(r state.Reader, epc string) ([]Event, error) {
	it, err := loadItem(r, epc)
	if err != nil {
		return nil, err
	}
	return it.history(r)
}

func (it *item) history(r state.Reader) ([]Event, error) {
	n := it.cont.eventCount()
	if it.pack != nil {
		n = it.pack.Events
	}
	out := make([]Event, 0, n)
	for seq := uint64(1); seq <= n; seq++ {
		var e Event
		ok, err := contracts.GetJSON(r, eventKey(it.epc, seq), &e)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, codes.Errorf(codes.Internal, "event %d of %s missing", seq, it.epc)
		}
		out = append(out, e)
	}
	return out, nil
}

func (c *Container) eventCount() uint64 {
	if c == nil {
		return 0
	}
	return c.Events
}

func getProduct(r state.Reader, gtin string) (*Product, error) {
	return contracts.Load[Product](r, ProductKey(gtin), "product %s is not registered", gtin)
}

func getLot(r state.Reader, gtin, lot string) (*Lot, error) {
	return contracts.Load[Lot](r, LotKey(gtin, lot), "lot %s of %s was never commissioned", lot, gtin)
}

func getShipment(r state.Reader, id uint64) (*Shipment, error) {
	return contracts.Load[Shipment](r, ShipmentKey(id), "shipment %d not found", id)
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
