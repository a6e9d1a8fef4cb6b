package app_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/tx"
)

// TestAttackDirectory: the public directory lists attested practitioners and organizations with
// their licence, filtered by name and role and paged; an unattested account (any name can be
// registered) only when all are asked for; never a patient, a registrar or a node; an
// oversized filter is refused.
func TestAttackDirectory(t *testing.T) {
	reg, pat, doc, doc2, hosp := newKey("registrar"), newKey("patient"), newKey("doctor"), newKey("doctor2"), newKey("hospital")
	c := newChain(t, reg)
	c.must(register(pat, identity.RolePatient, "")(t))
	c.must(register(doc, identity.RolePractitioner, "")(t))
	c.must(register(doc2, identity.RolePractitioner, "")(t))
	c.must(register(hosp, identity.RoleOrganization, "hospital")(t))
	exp := genesisTime.AddDate(1, 0, 0)
	c.must(reg.sign(t, identity.TypeAttest, identity.Attest{Subject: doc.addr, Licence: "MD-1", Jurisdiction: "NL", ExpiresAt: exp}))
	c.must(reg.sign(t, identity.TypeAttest, identity.Attest{Subject: hosp.addr, Licence: "H-1", Jurisdiction: "NL", ExpiresAt: exp}))
	at := genesisTime.Add(time.Hour)
	ask := func(q app.DirectoryQuery) ([]app.DirectoryEntry, string) {
		t.Helper()
		data, _ := json.Marshal(q)
		resp, err := c.app.Query(context.Background(), abciQuery(app.PathDirectory, data))
		if err != nil || resp.Code != 0 {
			t.Fatalf("directory %+v: %v %s", q, err, resp.Log)
		}
		var out []app.DirectoryEntry
		if err := json.Unmarshal(resp.Value, &out); err != nil {
			t.Fatal(err)
		}
		return out, resp.Info
	}
	in := func(es []app.DirectoryEntry) map[tx.Address]app.DirectoryEntry {
		m := map[tx.Address]app.DirectoryEntry{}
		for _, e := range es {
			m[e.Address] = e
		}
		return m
	}
	attested, _ := ask(app.DirectoryQuery{At: at})
	if m := in(attested); len(m) != 2 || m[doc.addr].Licence != "MD-1" || m[hosp.addr].OrgKind != "hospital" {
		t.Fatalf("the attested directory: %+v", attested)
	}
	all, _ := ask(app.DirectoryQuery{All: true, At: at})
	m := in(all)
	if _, ok := m[pat.addr]; ok {
		t.Fatal("a patient is in the directory")
	}
	if _, ok := m[reg.addr]; ok {
		t.Fatal("a registrar is in the directory")
	}
	if len(m) != 3 || m[doc2.addr].Name == "" || m[doc2.addr].Licence != "" {
		t.Fatalf("directory: %+v", all)
	}
	docs, _ := ask(app.DirectoryQuery{Role: identity.RolePractitioner, All: true, At: at})
	if m := in(docs); len(m) != 2 || m[doc.addr].Address == "" || m[doc2.addr].Address == "" {
		t.Fatalf("practitioners: %+v", docs)
	}
	// The name filter is case-insensitive and matches a part of the name.
	part := strings.ToUpper(m[doc2.addr].Name[2:8])
	if one, _ := ask(app.DirectoryQuery{Name: part, All: true, At: at}); len(one) != 1 || one[0].Address != doc2.addr {
		t.Fatalf("by name %q: %+v", part, one)
	}
	if none, _ := ask(app.DirectoryQuery{Name: "acct " + string(pat.addr[:6]), All: true, At: at}); len(none) != 0 {
		t.Fatalf("a patient found by name: %+v", none)
	}
	// Pages of one follow each other to the end, each entry once.
	seen, cursor := map[tx.Address]bool{}, ""
	for range 10 {
		page, next := ask(app.DirectoryQuery{All: true, At: at, Page: app.Page{Limit: 1, Cursor: cursor}})
		for _, e := range page {
			if seen[e.Address] {
				t.Fatalf("%s listed twice", e.Address)
			}
			seen[e.Address] = true
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	if len(seen) != len(all) {
		t.Fatalf("paging saw %d entries, the whole list has %d", len(seen), len(all))
	}
	data, _ := json.Marshal(app.DirectoryQuery{Name: strings.Repeat("x", app.MaxDirectoryName+1)})
	if resp, _ := c.app.Query(context.Background(), abciQuery(app.PathDirectory, data)); resp.Code != uint32(codes.Invalid) {
		t.Fatalf("an oversized filter: code %d", resp.Code)
	}
}
