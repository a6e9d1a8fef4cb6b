// Package consent holds patients' consent grants and evaluates access against them. The policy
// part (this file) is pure: Evaluate decides a request from a patient's grants with no I/O,
// and is property-tested against a naive model. Deny unless a grant allows.
//
// A grant may carry a CEL condition (condition.go). Conditions are independent of the host:
// they read the block time in UTC only (timestamp accessors with a time-zone argument, such as
// time.getHours("Europe/Amsterdam"), are refused when the grant is made, since a named zone
// would be looked up in the host's time zone database, which validators may hold in different
// versions or not at all), and they are bounded in size, nesting, AST nodes and static cost, all
// checked at CheckTx (Precheck), so no unbounded compilation runs inside a block.
//
// At most MaxGrantsPerPatient of a patient's grants are live (not revoked, not expired);
// revoked and expired grants do not count, and are deleted once a patient has MaxStoredGrants.
package consent

import (
	"slices"
	"time"

	"github.com/medchain/medchain/tx"
)

// Categories of health data a grant can cover, in a fixed order (bit i of a mask = Categories[i]).
var Categories = []string{
	"vital-signs", "laboratory", "conditions", "medications", "allergies", "immunizations",
	"procedures", "encounters", "diagnostic-reports", "documents", "care-plans", "demographics",
	"imaging", "social-history", "family-history", "financial", "other",
}

// EmergencyCategories are what break-glass access may open.
var EmergencyCategories = []string{"allergies", "medications", "conditions", "immunizations"}

// AllCategories in a grant means every category.
const AllCategories = "*"

// Purposes are HL7 v3 PurposeOfUse codes a grant can name (bit i of a mask = Purposes[i]).
var Purposes = []string{
	"TREAT",    // treatment
	"ETREAT",   // emergency treatment
	"HPAYMT",   // healthcare payment
	"HOPERAT",  // healthcare operations
	"HRESCH",   // healthcare research
	"CLINTRCH", // clinical trial research
	"PUBHLTH",  // public health
	"HLEGAL",   // legal
	"PATRQT",   // patient requested
	"FAMRQT",   // family requested
}

// Mask is a set of purposes as bits.
type Mask uint32

func maskOf(all []string, names []string) (Mask, bool) {
	var m Mask
	for _, n := range names {
		i := slices.Index(all, n)
		if i < 0 {
			return 0, false
		}
		m |= 1 << i
	}
	return m, true
}

// PurposeMask turns purpose names into a mask; ok is false for an unknown name.
func PurposeMask(names []string) (Mask, bool) { return maskOf(Purposes, names) }

// Grant is a patient's consent to a grantee.
type Grant struct {
	ID         uint64     `json:"id"`
	Patient    tx.Address `json:"patient"`
	Grantee    tx.Address `json:"grantee"`    // an account; an organization covers its affiliated practitioners
	Categories []string   `json:"categories"` // names or the patient's tags (tags.go), or AllCategories
	Purposes   []string   `json:"purposes"`
	NotBefore  time.Time  `json:"not_before"`
	Expiry     time.Time  `json:"expiry"`
	Write      bool       `json:"write,omitempty"`     // may also add records (TREAT grants)
	Condition  string     `json:"condition,omitempty"` // CEL over the request; see condition.go
	Revoked    bool       `json:"revoked,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	PurMask    Mask       `json:"purpose_mask"`
}

// Covers reports whether the grant covers category (a name or a tag).
func (g *Grant) Covers(category string) bool {
	return slices.Contains(g.Categories, AllCategories) || slices.Contains(g.Categories, category)
}

// LiveAt reports whether the grant still counts at t: not revoked and not yet expired (it may
// not have started). A grant that is not live at t is dead for good: it is never in force again.
func (g *Grant) LiveAt(t time.Time) bool { return !g.Revoked && t.Before(g.Expiry) }

// ActiveAt reports whether the grant is in force at t.
func (g *Grant) ActiveAt(t time.Time) bool {
	return !g.Revoked && !t.Before(g.NotBefore) && t.Before(g.Expiry)
}

// Request is an access to decide. Orgs are the organizations the requester is affiliated with
// (a grant to one of them covers the requester).
type Request struct {
	Requester tx.Address
	Orgs      []tx.Address
	Category  string
	Purpose   string
	Write     bool
	At        time.Time
}

// Decision is the outcome; Grant is the grant used when allowed.
type Decision struct {
	Allowed bool
	Grant   uint64
}

// Evaluate decides req against one patient's grants: allowed by the first grant, in id order,
// that is active at req.At, names the requester or one of its organizations, covers the
// category and the purpose, allows writing if req writes, and whose condition (if any) holds.
// Unknown purposes are denied, and so is a category that is not a tag: a grant naming tags
// covers the records and requests that carry the same tags.
func Evaluate(grants []Grant, req Request) Decision {
	pi := slices.Index(Purposes, req.Purpose)
	if pi < 0 || !IsTag(req.Category) {
		return Decision{}
	}
	pbit := Mask(1) << pi
	for i := range grants {
		g := &grants[i]
		if g.PurMask&pbit == 0 || !g.Covers(req.Category) || (req.Write && !g.Write) || !g.ActiveAt(req.At) {
			continue
		}
		if g.Grantee != req.Requester && !slices.Contains(req.Orgs, g.Grantee) {
			continue
		}
		if g.Condition != "" && !conditionHolds(g.Condition, &req) {
			continue
		}
		return Decision{Allowed: true, Grant: g.ID}
	}
	return Decision{}
}
