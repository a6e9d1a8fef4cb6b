package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

func recordsCmd() *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{Use: "records", Short: "Add, read, list and erase encrypted FHIR records"}
	f.register(cmd)
	var patientFlag string
	add := &cobra.Command{
		Use: "add FILE|-", Short: "Validate, encrypt, upload and anchor a FHIR R4 resource", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := readInput(args[0])
			if err != nil {
				return err
			}
			a, _, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			if patientFlag != "" {
				addr, err := resolveAddr(f.home, patientFlag)
				if err != nil {
					return err
				}
				if ref, err := parseRef(raw); err == nil && ref != "" {
					a.SetPatient(ref, addr)
				}
			}
			s, err := a.Add(cmd.Context(), raw)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "record %s (%s, category %s) anchored in block %d: tx %s\n",
				s.Anchor.ID, s.Resource.Type, s.Resource.Category, s.Height, s.TxHash)
			return nil
		},
	}
	add.Flags().StringVar(&patientFlag, "for", "", "the account (address or key name) of the Patient the resource references")
	get := &cobra.Command{
		Use: "get ID", Short: "Request access to a record, fetch and decrypt it (prints the FHIR JSON)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, _, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			p, err := a.Read(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("record %s: %w", args[0], err)
			}
			_, err = cmd.OutOrStdout().Write(append(p.JSON, '\n'))
			return err
		},
	}
	list := &cobra.Command{
		Use: "list [PATIENT]", Short: "List a patient's record anchors (metadata only)", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patient, err := resolvePatient(f, args)
			if err != nil {
				return err
			}
			c, err := f.reader(cmd.Context(), args)
			if err != nil {
				return err
			}
			recs, err := c.PatientRecords(cmd.Context(), patient)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tVERSION\tTYPE\tCATEGORY\tSTATUS\tAUTHOR\tCREATED")
			for _, r := range recs {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Version, c.agent.ResourceTypeName(cmd.Context(), patient, r.ResourceType), c.names(cmd.Context(), patient, r.Category)[0], r.Status, r.Author, r.CreatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	var all bool
	erase := &cobra.Command{
		Use: "erase [ID]", Short: "Erase a record (or --all): keys leave the ledger, nodes delete the ciphertext", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == all {
				return fmt.Errorf("name one record id or --all: %w", errUsage)
			}
			a, s, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			patient := s.Address()
			if patientFlag != "" {
				if patient, err = resolveAddr(f.home, patientFlag); err != nil {
					return err
				}
			}
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			r, err := a.Erase(cmd.Context(), patient, id)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "erased; receipt: block %d, tx %s\n", r.Height, r.TxHash)
			return nil
		},
	}
	erase.Flags().BoolVar(&all, "all", false, "erase all of the patient's records")
	erase.Flags().StringVar(&patientFlag, "for", "", "the patient a guardian acts for")
	cmd.AddCommand(add, get, list, erase)
	return cmd
}

// resolvePatient takes [PATIENT] or falls back to the --from key's address.
func resolvePatient(f *agentFlags, args []string) (tx.Address, error) {
	if len(args) == 1 {
		return resolveAddr(f.home, args[0])
	}
	if f.from == "" {
		return "", fmt.Errorf("name a PATIENT or use --from: %w", errUsage)
	}
	return resolveAddr(f.home, f.from)
}

func readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 8<<20))
	}
	return os.ReadFile(name)
}

// parseRef returns the Patient id a resource refers to.
func parseRef(raw []byte) (string, error) {
	var doc struct {
		Subject, Patient, Beneficiary struct {
			Reference string `json:"reference"`
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", err
	}
	ref := doc.Subject.Reference
	if ref == "" {
		ref = doc.Patient.Reference
	}
	if ref == "" {
		ref = doc.Beneficiary.Reference
	}
	return strings.TrimPrefix(ref, "Patient/"), nil
}

func consentCmd() *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{Use: "consent", Short: "Grant, revoke and list consent to a patient's records"}
	f.register(cmd)
	var cats, purposes, expires, notBefore, forPatient string
	var write bool
	grant := &cobra.Command{
		Use: "grant GRANTEE", Short: "Grant an account (or an organization's practitioners) access; re-wraps existing records' keys", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			grantee, err := resolveAddr(f.home, args[0])
			if err != nil {
				return err
			}
			exp, err := parseDate(expires)
			if err != nil {
				return err
			}
			m := consent.GrantMsg{Grantee: grantee, Categories: strings.Split(cats, ","), Purposes: strings.Split(purposes, ","), Expiry: exp, Write: write}
			if notBefore != "" {
				nb, err := parseDate(notBefore)
				if err != nil {
					return err
				}
				m.NotBefore = &nb
			}
			if forPatient != "" {
				if m.Patient, err = resolveAddr(f.home, forPatient); err != nil {
					return err
				}
			}
			a, _, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			r, err := a.Grant(cmd.Context(), m)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "grant %d committed in block %d; %s reads the covered records through the network key's holders\n", r.Grant, r.Height, grantee)
			return nil
		},
	}
	grant.Flags().StringVar(&cats, "categories", "*", "comma-separated categories, or * for all: "+strings.Join(consent.Categories, ","))
	grant.Flags().StringVar(&purposes, "purposes", "TREAT", "comma-separated purposes of use: "+strings.Join(consent.Purposes, ","))
	grant.Flags().StringVar(&expires, "expires", "720h", "expiry: YYYY-MM-DD, RFC 3339 or a duration from now")
	grant.Flags().StringVar(&notBefore, "not-before", "", "start: YYYY-MM-DD, RFC 3339 or a duration from now (default now)")
	grant.Flags().BoolVar(&write, "write", false, "the grantee may also add records (TREAT)")
	grant.Flags().StringVar(&forPatient, "for", "", "the patient a guardian acts for")
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a grant (effective from the next block)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("grant id must be a number: %w", errUsage)
			}
			a, s, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			patient := s.Address()
			if forPatient != "" {
				if patient, err = resolveAddr(f.home, forPatient); err != nil {
					return err
				}
			}
			if err := a.Revoke(cmd.Context(), patient, id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "grant %d revoked\n", id)
			return nil
		},
	}
	revoke.Flags().StringVar(&forPatient, "for", "", "the patient a guardian acts for")
	list := &cobra.Command{
		Use: "list [PATIENT]", Short: "List a patient's grants", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patient, err := resolvePatient(f, args)
			if err != nil {
				return err
			}
			c, err := f.reader(cmd.Context(), args)
			if err != nil {
				return err
			}
			grants, err := c.Grants(cmd.Context(), patient)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tGRANTEE\tCATEGORIES\tPURPOSES\tWRITE\tFROM\tUNTIL\tSTATE")
			now := time.Now()
			for _, g := range grants {
				state := "active"
				switch {
				case g.Revoked:
					state = "revoked"
				case !now.Before(g.Expiry):
					state = "expired"
				case now.Before(g.NotBefore):
					state = "pending"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%t\t%s\t%s\t%s\n", g.ID, g.Grantee, strings.Join(c.names(cmd.Context(), patient, g.Categories...), ","), strings.Join(g.Purposes, ","),
					g.Write, g.NotBefore.Format(time.RFC3339), g.Expiry.Format(time.RFC3339), state)
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(grant, revoke, list)
	return cmd
}

func accessCmd() *cobra.Command {
	f := &agentFlags{}
	var record, category string
	cmd := &cobra.Command{
		Use: "access PATIENT", Short: "Request access to a record or a category (always audited); prints the audit event", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patient, err := resolveAddr(f.home, args[0])
			if err != nil {
				return err
			}
			a, _, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			ev, err := a.Access(cmd.Context(), records.Access{Patient: patient, Record: record, Category: category, Purpose: f.purpose})
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), ev)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&record, "record", "", "record id")
	cmd.Flags().StringVar(&category, "category", "", "category (instead of a record)")
	return cmd
}

func auditCmd() *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{Use: "audit", Short: "Read a patient's audit trail (every access, granted or denied)"}
	f.register(cmd)
	var reader, category, since, until string
	filter := func() (client.AuditFilter, error) {
		af := client.AuditFilter{Category: category}
		var err error
		if reader != "" {
			if af.Requester, err = resolveAddr(f.home, reader); err != nil {
				return af, err
			}
		}
		for _, p := range []struct {
			s   string
			dst *time.Time
		}{{since, &af.From}, {until, &af.To}} {
			if p.s != "" {
				if *p.dst, err = parseDate(p.s); err != nil {
					return af, err
				}
			}
		}
		return af, nil
	}
	list := &cobra.Command{
		Use: "list [PATIENT]", Short: "List access events", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patient, err := resolvePatient(f, args)
			if err != nil {
				return err
			}
			af, err := filter()
			if err != nil {
				return err
			}
			c, err := f.reader(cmd.Context(), args)
			if err != nil {
				return err
			}
			if af.Category, err = c.agent.CategoryTag(cmd.Context(), patient, af.Category); err != nil {
				return err
			}
			events, err := c.Audit(cmd.Context(), patient, af)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tREADER\tWHAT\tPURPOSE\tOUTCOME\tBASIS\tBLOCK")
			for _, e := range events {
				what := strings.Join(c.names(cmd.Context(), patient, strings.Split(e.Category, ",")...), ",")
				if e.Record != "" {
					what = e.Record + " (" + what + ")"
				}
				basis := e.Basis
				if e.Grant != 0 {
					basis = fmt.Sprintf("grant %d", e.Grant)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", e.ID, e.Time.Format(time.RFC3339), e.Requester, what, e.Purpose, e.Outcome, basis, e.Height)
			}
			return tw.Flush()
		},
	}
	export := &cobra.Command{
		Use: "export [PATIENT]", Short: "Export access events as a FHIR AuditEvent Bundle", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patient, err := resolvePatient(f, args)
			if err != nil {
				return err
			}
			af, err := filter()
			if err != nil {
				return err
			}
			c, err := f.reader(cmd.Context(), args)
			if err != nil {
				return err
			}
			if af.Category, err = c.agent.CategoryTag(cmd.Context(), patient, af.Category); err != nil {
				return err
			}
			events, err := c.Audit(cmd.Context(), patient, af)
			if err != nil {
				return err
			}
			var rs [][]byte
			for i := range events {
				r, err := agent.AuditEventResource(&events[i], string(patient))
				if err != nil {
					return err
				}
				rs = append(rs, r)
			}
			b, err := agent.Bundle("collection", "", rs)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(append(b, '\n'))
			return err
		},
	}
	for _, c := range []*cobra.Command{list, export} {
		c.Flags().StringVar(&reader, "reader", "", "only this reader (address or key name)")
		c.Flags().StringVar(&category, "category", "", "only this category")
		c.Flags().StringVar(&since, "since", "", "from this time (YYYY-MM-DD, RFC 3339 or a duration such as -24h)")
		c.Flags().StringVar(&until, "until", "", "before this time")
	}
	cmd.AddCommand(list, export)
	return cmd
}

// openedSession is an emergency session as `emergency list` shows it: with its sealed reason and
// review note opened where the reader may read them.
type openedSession struct {
	*records.EmergencySession
	Reason     string `json:"reason,omitempty"`
	ReviewNote string `json:"review_note,omitempty"`
}

func emergencyCmd() *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{Use: "emergency", Short: "Break-glass access to a patient's emergency categories"}
	f.register(cmd)
	var reason, note string
	var notJustified bool
	var hours int
	open := &cobra.Command{
		Use: "open PATIENT", Short: "Open time-boxed emergency access (practitioners attested for emergency care)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patient, err := resolveAddr(f.home, args[0])
			if err != nil {
				return err
			}
			a, _, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			id, err := a.EmergencyOpen(cmd.Context(), patient, reason, hours)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "emergency session %d open; the patient is notified. Read with --purpose ETREAT.\n", id)
			return nil
		},
	}
	open.Flags().StringVar(&reason, "reason", "", "why (10..512 characters; the patient reads it)")
	open.Flags().IntVar(&hours, "hours", 0, "duration in hours, 1..72 (default 24)")
	review := &cobra.Command{
		Use: "review PATIENT ID", Short: "Mark an emergency session reviewed (patient, guardian or compliance officer)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			patient, err := resolveAddr(f.home, args[0])
			if err != nil {
				return err
			}
			id, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("session id must be a number: %w", errUsage)
			}
			a, _, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			if err := a.EmergencyReview(cmd.Context(), patient, id, note, !notJustified); err != nil {
				return err
			}
			if notJustified {
				fmt.Fprintf(cmd.OutOrStdout(), "emergency session %d reviewed as not justified: it is ended\n", id)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "emergency session %d reviewed\n", id)
			}
			return nil
		},
	}
	review.Flags().StringVar(&note, "note", "", "review note")
	review.Flags().BoolVar(&notJustified, "not-justified", false, "the access was not justified: end the session now")
	list := &cobra.Command{
		Use: "list [PATIENT]", Short: "List emergency sessions and the patient's notifications", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patient, err := resolvePatient(f, args)
			if err != nil {
				return err
			}
			c, err := f.reader(cmd.Context(), args)
			if err != nil {
				return err
			}
			sessions, err := c.EmergencySessions(cmd.Context(), patient)
			if err != nil {
				return err
			}
			// Sealed reasons and notes are shown opened, where --from may read them.
			out := make([]openedSession, len(sessions))
			for i := range sessions {
				s := &sessions[i]
				out[i].EmergencySession = s
				if text, err := c.agent.EmergencyText(cmd.Context(), s, records.TextReason); err == nil {
					out[i].Reason, s.SealedReason = text, nil
				}
				if text, err := c.agent.EmergencyText(cmd.Context(), s, records.TextNote); err == nil {
					out[i].ReviewNote, s.Reviewed.SealedNote = text, nil
				}
			}
			printJSON(cmd.OutOrStdout(), out)
			return nil
		},
	}
	cmd.AddCommand(open, review, list)
	return cmd
}
