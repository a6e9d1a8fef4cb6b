package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/medchain/medchain/contracts/supply"
	"github.com/medchain/medchain/tx"
)

func TestSupplyVerifyAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	n, c, home := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mfr := devKey(t, home, "manufacturer")
	submit := func(nonce uint64, typ string, msg any) {
		t.Helper()
		raw, _ := tx.Sign(mfr.Signing, n.ChainID, mfr.Address, nonce, typ, msg)
		if res, err := c.Submit(ctx, raw, "commit"); err != nil || res.Code != 0 {
			t.Fatalf("%s: %+v %v", typ, res, err)
		}
	}
	submit(0, supply.TypeRegisterProduct, supply.RegisterProduct{GTIN: "09506000134352", Name: "Amoxicillin 500 mg", MinDeciC: 150, MaxDeciC: 250})
	submit(1, supply.TypeCommission, supply.Commission{GTIN: "09506000134352", Lot: "LOT42", Expiry: "2029-12-31", Serials: []string{"SERIAL0001"}})

	base := "http://" + n.APIAddr + "/v1/supply/verify?code="
	for _, tc := range []struct {
		code   string
		status int
		want   string
	}{
		{"(01)09506000134352(17)291231(10)LOT42(21)SERIAL0001", 200, supply.StatusAuthentic},
		{"]d2010950600013435217291231" + "10LOT42\x1d21SERIAL0001", 200, supply.StatusAuthentic},
		{"https://id.gs1.org/01/09506000134352/10/LOT42/21/SERIAL0001?17=291231", 200, supply.StatusAuthentic},
		{"(01)09506000134352(21)SERIAL9999", 200, supply.StatusSuspectCounterfeit},
		{"(01)09506000134353(21)SERIAL0001", 400, "invalid"},
		{"(01)09506000134352(99)X", 400, "invalid"},
		{"", 400, "invalid"},
	} {
		resp, err := http.Get(base + url.QueryEscape(tc.code))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Status  string
			Message string
			History []supply.Event
			Error   struct{ Code, Message string }
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		got := body.Status
		if got == "" {
			got = body.Error.Code
		}
		if resp.StatusCode != tc.status || got != tc.want {
			t.Errorf("%q: %d %q (%s%s), want %d %q", tc.code, resp.StatusCode, got, body.Message, body.Error.Message, tc.status, tc.want)
		}
		if got == supply.StatusAuthentic && (len(body.History) != 1 || body.History[0].BizStep != "commissioning") {
			t.Errorf("history = %+v", body.History)
		}
	}
	resp, err := http.Get("http://" + n.APIAddr + "/v1/supply/epcis?code=" + url.QueryEscape("(01)09506000134352(21)SERIAL0001"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("epcis: %v %v", resp.Status, err)
	}
	var doc supply.EPCISDocument
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc.Type != "EPCISDocument" || len(doc.EPCISBody.EventList) != 1 || doc.EPCISBody.EventList[0].ILMD["cbvmda:lotNumber"] != "LOT42" {
		t.Fatalf("epcis doc: %+v", doc)
	}
}
