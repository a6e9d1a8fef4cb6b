package agent

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// MaxIncluded bounds the resources _include and _revinclude add to one page of a search.
const MaxIncluded = 200

// served is a search match: a decrypted record and the id it is served under.
type served struct {
	id string
	p  *Plain
}

// includes follows a page's _include and _revinclude parameters (over typ's matches, all of
// patient): the resources the matches reference along inc, and patient's resources of each rev's
// type that reference a match, each once and never a match again, at most MaxIncluded. What this
// account may not read is left out, as absent.
func (f *Facade) includes(ctx context.Context, patient tx.Address, typ string, matches []served, inc, rev []fhir.Include) ([][]byte, error) {
	if len(inc)+len(rev) == 0 || len(matches) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	for _, m := range matches {
		seen[typ+"/"+m.id] = true
	}
	var out [][]byte
	add := func(ref string, body []byte) {
		if !seen[ref] && len(out) < MaxIncluded {
			out = append(out, body)
		}
		seen[ref] = true
	}
	for _, in := range inc {
		for _, m := range matches {
			for _, ref := range fhir.References(typ, m.p.JSON, in.Param, in.Target) {
				if seen[ref] || len(out) == MaxIncluded {
					continue
				}
				body, err := f.resolve(ctx, ref)
				if errors.Is(err, ErrNotFound) {
					seen[ref] = true
					continue
				}
				if err != nil {
					return nil, err
				}
				add(ref, body)
			}
		}
	}
	targets := make([]string, len(matches))
	for i, m := range matches {
		targets[i] = typ + "/" + m.id
	}
	for _, rv := range rev {
		if g := grantOf(ctx); g != nil && !reaches(g, rv.Type, 'r') {
			continue // nothing of that type would be kept: nothing is read
		}
		found, err := f.agent.Search(ctx, patient, rv.Type, fhir.RevIncludeSearch(rv, typ, targets))
		if err != nil {
			return nil, err
		}
		found = f.permitted(ctx, 'r', found)
		for i := range found {
			c := &found[i]
			refs := fhir.References(rv.Type, c.JSON, rv.Param, typ)
			if !slices.ContainsFunc(refs, func(ref string) bool { return slices.Contains(targets, ref) }) {
				continue
			}
			body, err := serverView(c)
			if err != nil {
				return nil, err
			}
			add(rv.Type+"/"+c.Record.ID, body)
		}
	}
	return out, nil
}

// resolve reads what a relative reference ("Type/id") names, as served: a Patient of the
// directory as its demographics, else the record of that id if it is of that type. A reference
// to a record the node does not show this account is ErrNotFound at once, without an access
// request (the node's answer already said as much).
func (f *Facade) resolve(ctx context.Context, ref string) ([]byte, error) {
	typ, id, _ := strings.Cut(ref, "/")
	if typ == "Patient" {
		if acct, err := f.agent.PatientAccount(id); err == nil {
			if !f.patientAllowed(ctx, id, "Patient", 'r') {
				return nil, ErrNotFound
			}
			p, err := f.agent.Demographics(ctx, acct)
			if err != nil {
				return nil, err
			}
			if !f.permits(ctx, 'r', p.Record) {
				return nil, ErrNotFound
			}
			return servedView(p, id)
		}
	}
	if rec, err := f.agent.node.Record(ctx, id); client.IsNotFound(err) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	} else if !f.permits(ctx, 'r', rec) {
		return nil, ErrNotFound
	}
	p, err := f.agent.Read(ctx, id)
	if err != nil {
		return nil, err
	}
	if !f.agent.isType(ctx, p.Record, typ) {
		return nil, ErrNotFound
	}
	return serverView(p)
}
