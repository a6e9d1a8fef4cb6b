package consent

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Transaction types.
const (
	TypeGrant  = "consent/grant"
	TypeRevoke = "consent/revoke"
)

// Limits. MaxGrantsPerPatient bounds a patient's live grants (not revoked, not expired: see
// Grant.LiveAt), so that dead grants never lock a patient out of consent. MaxStoredGrants bounds
// what is kept: a grant that would take a patient's stored grants over it first deletes the
// patient's dead grants (all of them, in id order). A deleted grant reads as not found, which
// every reader takes as "not in force", as it was.
const (
	MaxGrantsPerPatient = 256
	MaxStoredGrants     = 2 * MaxGrantsPerPatient
	maxNames            = 32
)

// GrantMsg creates a grant. Patient is empty when the signer is the patient, or names the
// patient a guardian acts for. NotBefore defaults to the block time.
type GrantMsg struct {
	Patient    tx.Address `json:"patient,omitempty"`
	Grantee    tx.Address `json:"grantee"`
	Categories []string   `json:"categories"`
	Purposes   []string   `json:"purposes"`
	NotBefore  *time.Time `json:"not_before,omitempty"`
	Expiry     time.Time  `json:"expiry"`
	Write      bool       `json:"write,omitempty"`
	Condition  string     `json:"condition,omitempty"` // optional CEL expression over the request
}

// RevokeMsg revokes a grant; it takes effect for every later transaction.
type RevokeMsg struct {
	Patient tx.Address `json:"patient,omitempty"`
	ID      uint64     `json:"id"`
}

var (
	prefixGrant   = "cs/grant/"
	prefixGrantee = "cs/to/"
	keyGrantSeq   = []byte("cs/seq/grant")
)

// GranteePrefix is the key prefix of a grantee's index: the patients whose stored grants name it.
func GranteePrefix(grantee tx.Address) []byte { return []byte(prefixGrantee + string(grantee) + "/") }

func granteeKey(grantee, patient tx.Address) []byte {
	return append(GranteePrefix(grantee), patient...)
}

// GrantedBy is an entry of a grantee's index: a patient and how many of its stored grants that
// are not revoked name the grantee (expired ones count until they are pruned). The entry goes
// when that count falls to zero.
type GrantedBy struct {
	Patient tx.Address `json:"patient"`
	Grants  int        `json:"grants"`
}

// countGrantee adds delta to the grantee's count of patient's grants.
func countGrantee(kv state.KV, grantee, patient tx.Address, delta int) error {
	key := granteeKey(grantee, patient)
	e := GrantedBy{Patient: patient}
	if _, err := contracts.GetJSON(kv, key, &e); err != nil {
		return err
	}
	e.Grants += delta
	if e.Grants <= 0 {
		if err := kv.Delete(key); err != nil {
			return codes.Errorf(codes.Internal, "write state: %v", err)
		}
		return nil
	}
	return contracts.PutJSON(kv, key, &e)
}

// GrantPrefix is the key prefix of a patient's grants.
func GrantPrefix(patient tx.Address) []byte { return []byte(prefixGrant + string(patient) + "/") }

// GrantKey is the state key of one grant.
func GrantKey(patient tx.Address, id uint64) []byte {
	return append(GrantPrefix(patient), contracts.SeqKey(id)...)
}

var handlers = map[string]contracts.Handler{TypeGrant: contracts.Decode(grant), TypeRevoke: contracts.Decode(revoke)}

// Handles reports whether typ is a consent transaction.
func Handles(typ string) bool { return handlers[typ] != nil }

// Deliver executes a consent transaction.
func Deliver(kv state.KV, ctx contracts.Context, typ string, raw json.RawMessage) ([]contracts.Event, error) {
	h := handlers[typ]
	if h == nil {
		return nil, codes.Errorf(codes.UnknownType, "consent has no transaction %q", typ)
	}
	return h(kv, ctx, raw)
}

// ActingFor resolves the patient a signer acts for: itself, or a patient who named it guardian.
func ActingFor(r state.Reader, ctx contracts.Context, patient tx.Address) (tx.Address, error) {
	if patient == "" {
		patient = ctx.Signer
	}
	acc, err := identity.GetAccount(r, patient)
	if err != nil {
		return "", err
	}
	if acc.Role != identity.RolePatient {
		return "", codes.Errorf(codes.Unauthorized, "only patients (or their guardians) manage consent")
	}
	if patient != ctx.Signer && !acc.HasGuardian(ctx.Signer) {
		return "", codes.Errorf(codes.Unauthorized, "the signer is not a guardian of %s", patient)
	}
	return patient, nil
}

func grant(kv state.KV, ctx contracts.Context, m *GrantMsg) ([]contracts.Event, error) {
	patient, err := ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	if err := m.Grantee.Validate(); err != nil {
		return nil, err
	}
	if _, err := identity.GetAccount(kv, m.Grantee); err != nil {
		return nil, err
	}
	if m.Grantee == patient {
		return nil, codes.Errorf(codes.Invalid, "patients need no grant to their own data")
	}
	if len(m.Categories) == 0 || len(m.Categories) > maxNames || len(m.Purposes) == 0 || len(m.Purposes) > maxNames {
		return nil, codes.Errorf(codes.Invalid, "a grant names 1..%d categories and 1..%d purposes", maxNames, maxNames)
	}
	tagged := false
	for _, c := range m.Categories {
		if c == AllCategories {
			continue
		}
		if err := CheckTag("categories", c); err != nil {
			return nil, err
		}
		tagged = true
	}
	if tagged {
		if err := RequireTagKey(kv, patient); err != nil {
			return nil, err
		}
	}
	pm, ok := PurposeMask(m.Purposes)
	if !ok {
		return nil, codes.Errorf(codes.Invalid, "unknown purpose of use in %v; known: %v", m.Purposes, Purposes)
	}
	nb := ctx.Time
	if m.NotBefore != nil {
		nb = m.NotBefore.UTC()
	}
	if !m.Expiry.After(nb) || !m.Expiry.After(ctx.Time) {
		return nil, codes.Errorf(codes.Invalid, "expiry must be after not_before and after the block time")
	}
	if m.Condition != "" {
		if _, err := CompileCondition(m.Condition); err != nil {
			return nil, err
		}
	}
	existing, err := Grants(kv, patient)
	if err != nil {
		return nil, err
	}
	live := 0
	for i := range existing {
		if existing[i].LiveAt(ctx.Time) {
			live++
		}
	}
	if live >= MaxGrantsPerPatient {
		return nil, codes.Errorf(codes.Invalid, "at most %d grants in force or pending per patient; revoke one first", MaxGrantsPerPatient)
	}
	var events []contracts.Event
	if len(existing) >= MaxStoredGrants {
		pruned, err := pruneDead(kv, patient, existing, ctx.Time)
		if err != nil {
			return nil, err
		}
		events = append(events, contracts.NewEvent("consent.pruned", "patient", string(patient), "count", strconv.Itoa(pruned)))
	}
	id, err := contracts.NextSeq(kv, keyGrantSeq)
	if err != nil {
		return nil, err
	}
	g := Grant{ID: id, Patient: patient, Grantee: m.Grantee, Categories: m.Categories, Purposes: m.Purposes,
		NotBefore: nb, Expiry: m.Expiry.UTC(), Write: m.Write, Condition: m.Condition, CreatedAt: ctx.Time, PurMask: pm}
	events = append(events, contracts.NewEvent("consent.granted", "patient", string(patient), "grant", strconv.FormatUint(id, 10),
		"grantee", string(m.Grantee)))
	if err := countGrantee(kv, m.Grantee, patient, 1); err != nil {
		return nil, err
	}
	return events, contracts.PutJSON(kv, GrantKey(patient, id), &g)
}

// pruneDead deletes the patient's grants that are not live at t (revoked or expired; they can
// never be in force again), in id order, and returns how many it deleted.
func pruneDead(kv state.KV, patient tx.Address, grants []Grant, t time.Time) (int, error) {
	n := 0
	for i := range grants {
		if grants[i].LiveAt(t) {
			continue
		}
		if err := kv.Delete(GrantKey(patient, grants[i].ID)); err != nil {
			return n, codes.Errorf(codes.Internal, "write state: %v", err)
		}
		if !grants[i].Revoked { // a revoked grant left the grantee's count when it was revoked
			if err := countGrantee(kv, grants[i].Grantee, patient, -1); err != nil {
				return n, err
			}
		}
		n++
	}
	return n, nil
}

func revoke(kv state.KV, ctx contracts.Context, m *RevokeMsg) ([]contracts.Event, error) {
	patient, err := ActingFor(kv, ctx, m.Patient)
	if err != nil {
		return nil, err
	}
	g, err := contracts.Load[Grant](kv, GrantKey(patient, m.ID), "grant %d not found", m.ID)
	if err != nil {
		return nil, err
	}
	if g.Revoked {
		return nil, codes.Errorf(codes.Invalid, "grant %d is already revoked", m.ID)
	}
	t := ctx.Time
	g.Revoked, g.RevokedAt = true, &t
	if err := countGrantee(kv, g.Grantee, patient, -1); err != nil {
		return nil, err
	}
	return []contracts.Event{contracts.NewEvent("consent.revoked", "patient", string(patient), "grant", strconv.FormatUint(m.ID, 10))},
		contracts.PutJSON(kv, GrantKey(patient, m.ID), g)
}

// Grants lists a patient's stored grants in id order, revoked and expired included (dead grants
// are deleted only when a patient's stored grants reach MaxStoredGrants).
func Grants(r state.Reader, patient tx.Address) ([]Grant, error) {
	return contracts.List[Grant](r, GrantPrefix(patient))
}

// Check evaluates a request against a patient's grants in state.
func Check(r state.Reader, patient tx.Address, req Request) (Decision, error) {
	grants, err := Grants(r, patient)
	if err != nil {
		return Decision{}, err
	}
	return Evaluate(grants, req), nil
}
