package identity

import (
	"slices"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Affiliation transaction types: an attested organization declares which practitioners act for
// it, so that a patient's grant to the organization covers them.
const (
	TypeAffiliate   = "identity/affiliate"
	TypeUnaffiliate = "identity/unaffiliate"
)

// Affiliation is a practitioner's membership of an organization until Until.
type Affiliation struct {
	Org          tx.Address `json:"org"`
	Practitioner tx.Address `json:"practitioner"`
	Since        time.Time  `json:"since"`
	Until        time.Time  `json:"until"`
	Ended        bool       `json:"ended,omitempty"`
}

// ActiveAt reports whether the affiliation holds at t.
func (a *Affiliation) ActiveAt(t time.Time) bool {
	return !a.Ended && !t.Before(a.Since) && t.Before(a.Until)
}

// Affiliate is signed by an organization to add a practitioner until Until.
type Affiliate struct {
	Practitioner tx.Address `json:"practitioner"`
	Until        time.Time  `json:"until"`
}

// Unaffiliate ends a practitioner's affiliation with the signing organization.
type Unaffiliate struct {
	Practitioner tx.Address `json:"practitioner"`
}

var affiliationPrefix = "id/aff/"

// AffiliationPrefix is the key prefix of a practitioner's affiliations.
func AffiliationPrefix(practitioner tx.Address) []byte {
	return []byte(affiliationPrefix + string(practitioner) + "/")
}

func affiliationKey(practitioner, org tx.Address) []byte {
	return append(AffiliationPrefix(practitioner), org...)
}

// MaxAffiliations bounds one practitioner's organizations.
const MaxAffiliations = 16

func affiliate(kv state.KV, ctx contracts.Context, m *Affiliate) ([]contracts.Event, error) {
	if _, err := RequireOrg(kv, ctx.Signer, ctx.Time, OrgKinds...); err != nil {
		return nil, err
	}
	if err := m.Practitioner.Validate(); err != nil {
		return nil, err
	}
	p, err := GetAccount(kv, m.Practitioner)
	if err != nil {
		return nil, err
	}
	if p.Role != RolePractitioner {
		return nil, codes.Errorf(codes.Invalid, "%s is not a practitioner", m.Practitioner)
	}
	if !m.Until.After(ctx.Time) {
		return nil, codes.Errorf(codes.Invalid, "until must be after the block time")
	}
	list, err := Affiliations(kv, m.Practitioner)
	if err != nil {
		return nil, err
	}
	if len(list) >= MaxAffiliations {
		return nil, codes.Errorf(codes.Invalid, "a practitioner has at most %d affiliations", MaxAffiliations)
	}
	a := Affiliation{Org: ctx.Signer, Practitioner: m.Practitioner, Since: ctx.Time, Until: m.Until.UTC()}
	return []contracts.Event{contracts.NewEvent("identity.affiliated", "org", string(ctx.Signer), "practitioner", string(m.Practitioner))},
		contracts.PutJSON(kv, affiliationKey(m.Practitioner, ctx.Signer), &a)
}

func unaffiliate(kv state.KV, ctx contracts.Context, m *Unaffiliate) ([]contracts.Event, error) {
	a, err := contracts.Load[Affiliation](kv, affiliationKey(m.Practitioner, ctx.Signer), "%s is not affiliated with %s", m.Practitioner, ctx.Signer)
	if err != nil {
		return nil, err
	}
	a.Ended, a.Until = true, ctx.Time
	return []contracts.Event{contracts.NewEvent("identity.unaffiliated", "org", string(ctx.Signer), "practitioner", string(m.Practitioner))},
		contracts.PutJSON(kv, affiliationKey(m.Practitioner, ctx.Signer), a)
}

// Affiliations lists a practitioner's affiliations (ended ones included), by organization.
func Affiliations(r state.Reader, practitioner tx.Address) ([]Affiliation, error) {
	return contracts.List[Affiliation](r, AffiliationPrefix(practitioner))
}

// OrgsOf returns the organizations a practitioner acts for at t: active affiliations with an
// organization that is itself attested at t. The practitioner must be attested too.
func OrgsOf(r state.Reader, practitioner tx.Address, t time.Time) ([]tx.Address, error) {
	list, err := Affiliations(r, practitioner)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	if ok, err := Attested(r, practitioner, t); err != nil || !ok {
		return nil, err
	}
	var orgs []tx.Address
	for i := range list {
		if !list[i].ActiveAt(t) {
			continue
		}
		if ok, err := Attested(r, list[i].Org, t); err != nil {
			return nil, err
		} else if ok {
			orgs = append(orgs, list[i].Org)
		}
	}
	return orgs, nil
}

// HasScope reports whether a has an active attestation at t that carries scope.
func HasScope(r state.Reader, a tx.Address, t time.Time, scope string) (bool, error) {
	list, err := Attestations(r, a)
	if err != nil {
		return false, err
	}
	for i := range list {
		if list[i].ActiveAt(t) && slices.Contains(list[i].Scopes, scope) {
			return true, nil
		}
	}
	return false, nil
}
