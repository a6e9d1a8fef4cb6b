package agent

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

//go:embed demo/*.json
var demoFS embed.FS

// DemoSigners are the dev network's accounts the demo data involves.
type DemoSigners struct {
	Patient, Doctor, Hospital *client.Signer
}

// SeedDemo gives a fresh dev network its demo data, once: the patient draws its tag key and grants the doctor TREAT
// access (read and write) to every category for a year and designates the hospital for
// emergencies, the hospital affiliates the doctor, and the doctor's agent adds a few records.
// It does nothing if the patient already has grants.
func SeedDemo(ctx context.Context, s DemoSigners, doctor *Agent) (bool, error) {
	grants, err := s.Patient.Reads().Grants(ctx, s.Patient.Address())
	if err != nil {
		return false, err
	}
	if len(grants) > 0 {
		return false, nil
	}
	// The patient's tag key first: the doctor's records then carry tags, not category names.
	if _, err := New(s.Patient, Config{}).EnsureTagKey(ctx, s.Patient.Address()); err != nil {
		return false, fmt.Errorf("demo tag key: %w", err)
	}
	steps := []struct {
		who *client.Signer
		typ string
		msg any
	}{
		{s.Patient, consent.TypeGrant, consent.GrantMsg{Grantee: s.Doctor.Address(), Categories: []string{consent.AllCategories},
			Purposes: []string{"TREAT"}, Expiry: time.Now().AddDate(1, 0, 0).UTC(), Write: true}},
		{s.Patient, records.TypeSettings, records.SettingsMsg{Settings: records.Settings{EmergencyOrgs: []tx.Address{s.Hospital.Address()}}}},
		{s.Hospital, identity.TypeAffiliate, identity.Affiliate{Practitioner: s.Doctor.Address(), Until: time.Now().AddDate(2, 0, 0).UTC()}},
	}
	for _, st := range steps {
		if _, err := st.who.Send(ctx, st.typ, st.msg); err != nil {
			return false, fmt.Errorf("demo %s: %w", st.typ, err)
		}
	}
	files, _ := fs.Glob(demoFS, "demo/*.json")
	for _, f := range files {
		raw, _ := demoFS.ReadFile(f)
		if _, err := doctor.Add(ctx, raw); err != nil {
			return false, fmt.Errorf("demo record %s: %w", f, err)
		}
	}
	return true, nil
}
