package supply

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/gs1"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// EPCISDocument is an EPCIS 2.0 JSON(-LD) document (GS1 EPCIS 2.0 section 12 / JSON schema).
type EPCISDocument struct {
	Context       []any     `json:"@context"`
	Type          string    `json:"type"`
	SchemaVersion string    `json:"schemaVersion"`
	CreationDate  time.Time `json:"creationDate"`
	EPCISBody     struct {
		EventList []EPCISEvent `json:"eventList"`
	} `json:"epcisBody"`
}

// EPCISEvent is one ObjectEvent or AggregationEvent.
type EPCISEvent struct {
	Type                string         `json:"type"`
	EventID             string         `json:"eventID"`
	EventTime           time.Time      `json:"eventTime"`
	EventTimeZoneOffset string         `json:"eventTimeZoneOffset"`
	EPCList             []string       `json:"epcList,omitempty"`
	ParentID            string         `json:"parentID,omitempty"`
	ChildEPCs           []string       `json:"childEPCs,omitempty"`
	Action              string         `json:"action"`
	BizStep             string         `json:"bizStep"`
	Disposition         string         `json:"disposition"`
	ReadPoint           *idRef         `json:"readPoint,omitempty"`
	SourceList          []party        `json:"sourceList,omitempty"`
	DestinationList     []party        `json:"destinationList,omitempty"`
	BizTransactionList  []bizTx        `json:"bizTransactionList,omitempty"`
	ILMD                map[string]any `json:"ilmd,omitempty"`
	Extension           map[string]any `json:"medchain:extension,omitempty"`
}

type idRef struct {
	ID string `json:"id"`
}

type party struct {
	Type   string `json:"type"`
	Source string `json:"source,omitempty"`
	Dest   string `json:"destination,omitempty"`
}

type bizTx struct {
	Type           string `json:"type"`
	BizTransaction string `json:"bizTransaction"`
}

// partyURI names an account in EPCIS documents.
func partyURI(a tx.Address) string { return "urn:medchain:account:" + string(a) }

// epcURI renders an EPC key as the GS1 Digital Link URI EPCIS 2.0 uses.
func epcURI(epc string) string {
	if isContainerKey(epc) {
		return gs1.SSCCLink(strings.TrimPrefix(epc, "00/"))
	}
	parts := strings.SplitN(epc, "/", 4) // 01, gtin, 21, escaped serial
	serial, _ := url.PathUnescape(parts[3])
	return gs1.DigitalLink(parts[1], serial)
}

// ExportEPCIS returns an item's history as an EPCIS 2.0 document, created at the given time.
func ExportEPCIS(r state.Reader, code string, created time.Time) (*EPCISDocument, error) {
	epc, _, err := EPCOf(code)
	if err != nil {
		return nil, err
	}
	it, err := loadItem(r, epc)
	if err != nil {
		return nil, err
	}
	events, err := it.history(r)
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "history: %v", err)
	}
	doc := &EPCISDocument{
		Context:       []any{"https://ref.gs1.org/standards/epcis/epcis-context.jsonld", map[string]string{"medchain": "urn:medchain:"}},
		Type:          "EPCISDocument",
		SchemaVersion: "2.0",
		CreationDate:  created.UTC(),
	}
	doc.EPCISBody.EventList = []EPCISEvent{}
	uri := epcURI(epc)
	for _, e := range events {
		ev := EPCISEvent{Type: e.Type, EventID: "urn:medchain:event:" + epc + ":" + strconv.FormatUint(e.Seq, 10), EventTime: e.Time,
			EventTimeZoneOffset: "+00:00", Action: e.Action, BizStep: e.BizStep, Disposition: e.Disposition,
			ReadPoint: &idRef{ID: partyURI(e.Actor)}}
		if e.Type == "AggregationEvent" {
			ev.ParentID = gs1.SSCCLink(e.Parent)
			if uri != ev.ParentID {
				ev.ChildEPCs = []string{uri}
			}
		} else {
			ev.EPCList = []string{uri}
		}
		if e.Source != "" {
			ev.SourceList = []party{{Type: "owning_party", Source: partyURI(e.Source)}}
		}
		if e.Destination != "" {
			ev.DestinationList = []party{{Type: "owning_party", Dest: partyURI(e.Destination)}}
		}
		if e.Shipment != 0 {
			ev.BizTransactionList = []bizTx{{Type: "desadv", BizTransaction: "urn:medchain:shipment:" + strconv.FormatUint(e.Shipment, 10)}}
		}
		if e.BizStep == "commissioning" {
			ev.ILMD = map[string]any{"cbvmda:lotNumber": e.Lot, "cbvmda:itemExpirationDate": e.Expiry}
		}
		if e.Reason != "" || e.DeciC != nil {
			ev.Extension = map[string]any{"medchain:reason": e.Reason, "medchain:height": e.Height}
			if e.DeciC != nil {
				ev.Extension["medchain:temperatureDeciCelsius"] = *e.DeciC
			}
		}
		doc.EPCISBody.EventList = append(doc.EPCISBody.EventList, ev)
	}
	return doc, nil
}
