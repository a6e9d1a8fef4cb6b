package identity

import (
	"slices"
	"strings"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// State keys. Everything identity stores lives under "id/".
var (
	accountPrefix     = []byte("id/acct/")
	attestationPrefix = []byte("id/att/")
	registrarPrefix   = []byte("id/reg/")
	proposalPrefix    = []byte("id/prop/")
	directoryPrefix   = []byte("id/dir/")
	attestationSeq    = []byte("id/seq/att")
	proposalSeq       = []byte("id/seq/prop")
)

// AccountKey is the state key of an account; queries prove it.
func AccountKey(a tx.Address) []byte { return append(append([]byte{}, accountPrefix...), a...) }

// AttestationPrefix is the key prefix of a subject's attestations.
func AttestationPrefix(subject tx.Address) []byte {
	return []byte(string(attestationPrefix) + string(subject) + "/")
}

// AttestationKey is the state key of one attestation.
func AttestationKey(subject tx.Address, id uint64) []byte {
	return append(AttestationPrefix(subject), contracts.SeqKey(id)...)
}

func registrarKey(a tx.Address) []byte { return append(append([]byte{}, registrarPrefix...), a...) }

func proposalKey(id uint64) []byte {
	return append(append([]byte{}, proposalPrefix...), contracts.SeqKey(id)...)
}

// GetAccount returns the account at a, or a NotFound error.
func GetAccount(r state.Reader, a tx.Address) (*Account, error) {
	acc, err := LookupAccount(r, a)
	if err == nil && acc == nil {
		return nil, codes.Errorf(codes.NotFound, "account %s not found", a)
	}
	return acc, err
}

// LookupAccount returns the account at a, or nil if there is none: GetAccount without the
// NotFound error, for the admission checks that run for every tx and expect no account for a
// registration.
func LookupAccount(r state.Reader, a tx.Address) (*Account, error) {
	var acc Account
	ok, err := contracts.GetJSON(r, AccountKey(a), &acc)
	if err != nil || !ok {
		return nil, err
	}
	return &acc, nil
}

// HasAccount reports whether a has an account, without decoding it.
func HasAccount(r state.Reader, a tx.Address) (bool, error) {
	v, err := r.Get(AccountKey(a))
	if err != nil {
		return false, codes.Errorf(codes.Internal, "read state: %v", err)
	}
	return v != nil, nil
}

// SharedAccount is GetAccount through the decoded values a query's view keeps
// (contracts.LoadShared): the account must not be modified.
func SharedAccount(r state.Reader, a tx.Address) (*Account, error) {
	return contracts.LoadShared[Account](r, AccountKey(a), "account %s not found", a)
}

// PutAccount stores an account.
func PutAccount(kv state.KV, acc *Account) error {
	return contracts.PutJSON(kv, AccountKey(acc.Address), acc)
}

// listInDirectory lists a new practitioner or organization in the public directory (a patient,
// a registrar or a node account never).
func listInDirectory(kv state.KV, acc *Account) error {
	if acc.Role != RolePractitioner && acc.Role != RoleOrganization {
		return nil
	}
	if err := kv.Set(DirectoryKey(acc.Address), []byte{1}); err != nil {
		return codes.Errorf(codes.Internal, "write state: %v", err)
	}
	return nil
}

// DirectoryPrefix is the key prefix of the directory of practitioners and organizations (the
// accounts a patient grants access to); a patient's account is never in it.
func DirectoryPrefix() []byte { return slices.Clone(directoryPrefix) }

// DirectoryKey is the state key of an account's directory entry.
func DirectoryKey(a tx.Address) []byte { return append(DirectoryPrefix(), a...) }

// IsRegistrar reports whether a is in the registrar set.
func IsRegistrar(r state.Reader, a tx.Address) (bool, error) {
	v, err := r.Get(registrarKey(a))
	if err != nil {
		return false, codes.Errorf(codes.Internal, "read registrar: %v", err)
	}
	return v != nil, nil
}

// Registrars lists the registrar set in address order.
func Registrars(r state.Reader) ([]tx.Address, error) {
	var out []tx.Address
	err := r.Iterate(registrarPrefix, func(k, _ []byte) bool {
		out = append(out, tx.Address(k[len(registrarPrefix):]))
		return false
	})
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "list registrars: %v", err)
	}
	return out, nil
}

// Attestations lists a subject's attestations in issue order, revoked and expired included.
func Attestations(r state.Reader, subject tx.Address) ([]Attestation, error) {
	out, err := contracts.List[Attestation](r, AttestationPrefix(subject))
	if err != nil {
		return nil, codes.Errorf(codes.Internal, "list attestations: %v", err)
	}
	return out, nil
}

// GetAttestation returns one attestation, or NotFound.
func GetAttestation(r state.Reader, subject tx.Address, id uint64) (*Attestation, error) {
	return contracts.Load[Attestation](r, AttestationKey(subject, id), "attestation %d of %s not found", id, subject)
}

// GetProposal returns a registrar proposal, or NotFound.
func GetProposal(r state.Reader, id uint64) (*Proposal, error) {
	return contracts.Load[Proposal](r, proposalKey(id), "proposal %d not found", id)
}

// Attested reports whether a has at least one attestation active at t.
func Attested(r state.Reader, a tx.Address, t time.Time) (bool, error) {
	list, err := Attestations(r, a)
	if err != nil {
		return false, err
	}
	for i := range list {
		if list[i].ActiveAt(t) {
			return true, nil
		}
	}
	return false, nil
}

// RequireOrg returns the signer's account if it is an organization of one of kinds with an
// active attestation at t; otherwise an Unauthorized error naming what is missing.
func RequireOrg(r state.Reader, a tx.Address, t time.Time, kinds ...string) (*Account, error) {
	acc, err := GetAccount(r, a)
	if err != nil {
		return nil, err
	}
	if acc.Role != RoleOrganization || !slices.Contains(kinds, acc.OrgKind) {
		return nil, codes.Errorf(codes.Unauthorized, "only a %s may do this", strings.Join(kinds, " or "))
	}
	ok, err := Attested(r, a, t)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, codes.Errorf(codes.Unauthorized, "%s has no active registrar attestation", a)
	}
	return acc, nil
}
