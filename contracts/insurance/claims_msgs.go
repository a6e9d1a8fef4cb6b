package insurance

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/tx"
)

// Claims transaction types.
const (
	TypeRegisterPolicy = "insurance/register_policy"
	TypeEnroll         = "insurance/enroll"
	TypeDeposit        = "insurance/deposit"
	TypeClaim          = "insurance/claim"
	TypeReview         = "insurance/review"
)

// Services are named on the ledger by tags, never by their codes: a procedure code is clinical
// meaning, and no operator's disk may hold it in clear. A service tag is a keyed hash of the
// code under the policy's service key (ServiceTag), which the insurer shares with the providers
// it contracts (as a fee schedule is shared); the ledger matches a claim's services to the
// policy's benefits by equality, and the codes themselves travel only in encrypted records (the
// FHIR Claim the provider stores for the patient).

// CodeSystems are the FHIR systems a service code may come from: CPT, HCPCS, SNOMED CT.
var CodeSystems = []string{"http://www.ama-assn.org/go/cpt", "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "http://snomed.info/sct"}

// ServiceKeyBytes is the size of a policy's service key.
const ServiceKeyBytes = 32

// ServiceTag is the tag of a service code (system, code) under a policy's service key: 16 bytes
// of HMAC-SHA256, lowercase hex, as the ledger names the service.
func ServiceTag(key []byte, system, code string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("medchain/service-tag/v1\n" + system + "\n" + code))
	return hex.EncodeToString(m.Sum(nil)[:consent.TagBytes])
}

// Limits of claims messages.
const (
	MaxBenefits   = 512
	MaxClaimItems = 16
	MaxAmount     = 1_000_000_000_00 // minor units: a billion in the policy's currency
	MaxRuleBytes  = 1024
	maxIDBytes    = 64
	maxReason     = 256
)

// Benefit is one covered service of a policy.
type Benefit struct {
	Service string `json:"service"` // ServiceTag of the service's code
	Allowed int64  `json:"allowed"` // the most the policy recognizes for the service, minor units
	// PriorAuth makes claims for the service pend until the insurer reviews them.
	PriorAuth bool `json:"prior_auth,omitempty"`
}

// RegisterPolicy registers one of the signer's (an attested insurer's) policies. Amounts are in
// minor units of Currency (the settlement unit: cents of it, not a token).
type RegisterPolicy struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Currency    string    `json:"currency"` // ISO 4217
	Benefits    []Benefit `json:"benefits"`
	AnnualLimit int64     `json:"annual_limit"` // the most the policy pays per member and calendar year (0: no limit)
	Deductible  int64     `json:"deductible"`   // what the member pays first each calendar year
	CoPay       int64     `json:"co_pay"`       // what the member pays per claim after that
	// Rule is an extra coverage rule in CEL, evaluated per claim item (see RuleVariables); an
	// item for which it is not true is denied.
	Rule string `json:"rule,omitempty"`
}

// Enroll enrolls a member in one of the signer's policies by the member's coverage credential
// (its leaf in the signer's registry): claims stop being paid once the credential is revoked.
type Enroll struct {
	Policy string     `json:"policy"`
	Member tx.Address `json:"member"`
	Leaf   []byte     `json:"leaf"`
	Start  uint32     `json:"start"` // first day covered (coverage.Day)
	End    uint32     `json:"end"`   // last day covered
}

// Deposit adds to the signer's (an insurer's) settlement balance: funds it holds for claims
// (the off-ledger money movement it reflects is the insurer's and its bank's).
type Deposit struct {
	Amount int64 `json:"amount"`
}

// ClaimItem is one service billed.
type ClaimItem struct {
	Service string `json:"service"` // ServiceTag of the service's code
	Amount  int64  `json:"amount"`  // billed, minor units
}

// Claim is a provider's claim for services recorded in one of the patient's anchored records
// (a Procedure or an Encounter) that the patient's payment consent to the insurer covers.
type Claim struct {
	ID      string      `json:"id"` // the provider's identifier of the claim, unique per provider
	Insurer tx.Address  `json:"insurer"`
	Policy  string      `json:"policy"`
	Patient tx.Address  `json:"patient"`
	Record  string      `json:"record"`
	Day     uint32      `json:"day"` // date of service (coverage.Day)
	Items   []ClaimItem `json:"items"`
}

// Review is the insurer's decision on a pended claim.
type Review struct {
	Provider tx.Address `json:"provider"`
	ID       string     `json:"id"`
	Approve  bool       `json:"approve"`
	Reason   string     `json:"reason,omitempty"`
}

func checkID(field, s string) error {
	if err := contracts.Text(field, s, 1, maxIDBytes); err != nil {
		return err
	}
	return nil
}

func checkService(service string) error {
	if !consent.IsTag(service) {
		return codes.Errorf(codes.Invalid, "service must be a service tag (%d lowercase hex digits), never a code in clear", 2*consent.TagBytes)
	}
	return nil
}

func checkAmount(field string, v int64) error {
	if v < 0 || v > MaxAmount {
		return codes.Errorf(codes.Invalid, "%s must be 0..%d minor units", field, int64(MaxAmount))
	}
	return nil
}

// Validate checks a policy's fields (not its rule's compilation: see Precheck).
func (m *RegisterPolicy) Validate() error {
	if err := checkID("policy id", m.ID); err != nil {
		return err
	}
	if err := contracts.Text("name", m.Name, 1, 128); err != nil {
		return err
	}
	if len(m.Currency) != 3 || m.Currency[0] < 'A' || m.Currency[0] > 'Z' || m.Currency[1] < 'A' || m.Currency[1] > 'Z' || m.Currency[2] < 'A' || m.Currency[2] > 'Z' {
		return codes.Errorf(codes.Invalid, "currency must be an ISO 4217 code (three capital letters)")
	}
	if len(m.Benefits) == 0 || len(m.Benefits) > MaxBenefits {
		return codes.Errorf(codes.Invalid, "benefits: 1..%d", MaxBenefits)
	}
	seen := make(map[string]bool, len(m.Benefits))
	for _, b := range m.Benefits {
		if err := checkService(b.Service); err != nil {
			return err
		}
		if err := checkAmount("allowed", b.Allowed); err != nil {
			return err
		}
		if seen[b.Service] {
			return codes.Errorf(codes.Invalid, "benefit %s listed twice", b.Service)
		}
		seen[b.Service] = true
	}
	for _, a := range []struct {
		f string
		v int64
	}{{"annual_limit", m.AnnualLimit}, {"deductible", m.Deductible}, {"co_pay", m.CoPay}} {
		if err := checkAmount(a.f, a.v); err != nil {
			return err
		}
	}
	if len(m.Rule) > MaxRuleBytes {
		return codes.Errorf(codes.Invalid, "rule over %d bytes", MaxRuleBytes)
	}
	return nil
}

// Validate checks a claim's fields.
func (m *Claim) Validate() error {
	if err := checkID("claim id", m.ID); err != nil {
		return err
	}
	if err := checkID("policy", m.Policy); err != nil {
		return err
	}
	if err := contracts.Text("record", m.Record, 1, 128); err != nil {
		return err
	}
	for _, a := range []tx.Address{m.Insurer, m.Patient} {
		if err := a.Validate(); err != nil {
			return codes.Errorf(codes.Invalid, "address: %v", err)
		}
	}
	if len(m.Items) == 0 || len(m.Items) > MaxClaimItems {
		return codes.Errorf(codes.Invalid, "items: 1..%d", MaxClaimItems)
	}
	for i, it := range m.Items {
		if err := checkService(it.Service); err != nil {
			return err
		}
		if err := checkAmount("amount", it.Amount); err != nil {
			return err
		}
		for _, prev := range m.Items[:i] {
			if prev.Service == it.Service {
				return codes.Errorf(codes.Invalid, "service %s billed twice in one claim", it.Service)
			}
		}
	}
	return nil
}
