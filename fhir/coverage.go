package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// CoverageCard is what an insurance card says, read from a FHIR R4 Coverage resource: the
// member id, the plan, and the period of coverage.
type CoverageCard struct {
	MemberID string
	Plan     string
	Start    time.Time // first day covered
	End      time.Time // last day covered
}

// ParseCoverageCard validates raw as a FHIR R4 Coverage and reads its card: the member id is
// subscriberId (or the first identifier), the plan is the class of type "plan", and the period
// must have both a start and an end.
func ParseCoverageCard(raw []byte) (*CoverageCard, error) {
	r, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	if r.Type != "Coverage" {
		return nil, &InvalidError{Msg: fmt.Sprintf("a %s is not a Coverage", r.Type)}
	}
	var doc struct {
		SubscriberID string `json:"subscriberId"`
		Identifier   []struct {
			Value string `json:"value"`
		} `json:"identifier"`
		Class []struct {
			Type struct {
				Coding []struct {
					System string `json:"system"`
					Code   string `json:"code"`
				} `json:"coding"`
			} `json:"type"`
			Value string `json:"value"`
		} `json:"class"`
		Period struct {
			Start string `json:"start"`
			End   string `json:"end"`
		} `json:"period"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, &InvalidError{Msg: err.Error()}
	}
	c := &CoverageCard{MemberID: doc.SubscriberID}
	if c.MemberID == "" && len(doc.Identifier) > 0 {
		c.MemberID = doc.Identifier[0].Value
	}
	for _, cl := range doc.Class {
		for _, cd := range cl.Type.Coding {
			if cd.Code == "plan" && c.Plan == "" {
				c.Plan = cl.Value
			}
		}
	}
	var errs []error
	if c.MemberID == "" {
		errs = append(errs, errors.New("no subscriberId or identifier (the member id)"))
	}
	if c.Plan == "" {
		errs = append(errs, errors.New(`no class of type "plan"`))
	}
	if c.Start, err = fhirDay(doc.Period.Start); err != nil {
		errs = append(errs, fmt.Errorf("period.start: %w", err))
	}
	if c.End, err = fhirDay(doc.Period.End); err != nil {
		errs = append(errs, fmt.Errorf("period.end: %w", err))
	}
	if len(errs) > 0 {
		return nil, &InvalidError{Msg: "Coverage: " + errors.Join(errs...).Error()}
	}
	if c.End.Before(c.Start) {
		return nil, &InvalidError{Msg: "Coverage: the period ends before it starts"}
	}
	return c, nil
}

// fhirDay reads a FHIR date or dateTime as its day (UTC).
func fhirDay(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("missing")
	}
	for _, layout := range []string{"2006-01-02", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a full date", s)
}
