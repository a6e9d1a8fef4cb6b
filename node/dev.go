package node

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
)

// DevChainID is the chain id of the embedded dev network.
const DevChainID = "medchain-dev"

// DemoAccounts are the dev network's accounts, created with unencrypted (dev-marked) keys in the
// home's keyring. The practitioner and the organizations are attested by the registrar; the
// practitioner may open emergency access.
func DemoAccounts(now time.Time) []AccountSpec {
	until := now.AddDate(2, 0, 0).UTC()
	att := func(licence, specialty string, scopes ...string) *identity.Attestation {
		return &identity.Attestation{Licence: licence, Specialty: specialty, Jurisdiction: "NL", Scopes: scopes, ExpiresAt: until}
	}
	return []AccountSpec{
		{KeyName: "registrar", Role: identity.RoleRegistrar, Name: "Dev Registrar"},
		{KeyName: "hospital", Role: identity.RoleOrganization, OrgKind: "hospital", Name: "St. Example Hospital", Attest: att("HOSP-0001", "general hospital", "emergency")},
		{KeyName: "doctor", Role: identity.RolePractitioner, Name: "Dr. Ada Example", Attest: att("MD-12345", "cardiology", "emergency")},
		{KeyName: "patient", Role: identity.RolePatient}, // a patient has no name on the ledger,
		{KeyName: "pharmacy", Role: identity.RoleOrganization, OrgKind: "pharmacy", Name: "Corner Pharmacy", Attest: att("PHARM-0042", "community pharmacy")},
		{KeyName: "insurer", Role: identity.RoleOrganization, OrgKind: "insurer", Name: "Example Health Insurance", Attest: att("INS-0007", "")},
		{KeyName: "manufacturer", Role: identity.RoleOrganization, OrgKind: "manufacturer", Name: "Example Pharma", Attest: att("MFR-0099", "")},
		{KeyName: "distributor", Role: identity.RoleOrganization, OrgKind: "distributor", Name: "Example Wholesale", Attest: att("WDA-0123", "")},
		{KeyName: "regulator", Role: identity.RoleOrganization, OrgKind: "regulator", Name: "Example Medicines Agency", Attest: att("REG-0001", "")},
	}
}

// EnsureDev creates a single-validator dev home with the demo accounts if home has no node yet.
// It reports whether it created one.
func EnsureDev(home string, ports Ports) (bool, error) {
	if _, err := os.Stat(filepath.Join(home, "config", "genesis.json")); err == nil {
		return false, nil
	}
	if _, err := os.Stat(filepath.Join(home, "config", "config.toml")); err == nil {
		return false, fmt.Errorf("%s holds a node without genesis.json; remove it or run `medchain node init`", home)
	}
	v, err := InitHome(home, "dev", ports)
	if err != nil {
		return false, err
	}
	kr, err := keyring.OpenFile(KeyringDir(home))
	if err != nil {
		return false, err
	}
	now := time.Now()
	g, err := GenesisAccounts(kr, "", DemoAccounts(now), now)
	if err != nil {
		return false, err
	}
	return true, WriteGenesis(DevChainID, now, []*Validator{v}, g)
}
