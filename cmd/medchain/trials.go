package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/notary"
	"github.com/medchain/medchain/contracts/trials"
	"github.com/medchain/medchain/fsutil"
)

func trialsCmd() *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{Use: "trials", Short: "Clinical trials: registration, amendments, e-consent, data anchoring, lock, results"}
	f.register(cmd)
	send := f.sendMsg
	fileHash := func(name string) ([]byte, error) { return hashFile(name, notary.SHA256) }

	var reg trials.Register
	var protocol, sap, outcomesFile, saltOut, ethics string
	var sites []string
	register := &cobra.Command{Use: "register", Short: "Register a trial before enrollment (an attested trial sponsor)", Args: cobra.NoArgs,
		Long: `Registers a trial: the protocol's and the statistical analysis plan's SHA-256, a commitment to
the pre-registered outcomes (--outcomes: a JSON file {"primary": ..., "secondary": [...]}; the
commitment is SHA-256 of a random salt and the outcomes, and the salt is written to --salt-out:
keep it, the results reveal it), the sites (--site ID=ORG:INVESTIGATOR,INVESTIGATOR...) and the
ethics committee that approves amendments (--approval-required).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if reg.ProtocolHash, err = fileHash(protocol); err != nil {
				return err
			}
			if reg.SAPHash, err = fileHash(sap); err != nil {
				return err
			}
			o, err := readOutcomes(outcomesFile)
			if err != nil {
				return err
			}
			salt := make([]byte, 32)
			rand.Read(salt)
			reg.Outcomes = trials.Commitment(o, salt)
			if reg.Ethics, err = resolveAddr(f.home, ethics); err != nil {
				return err
			}
			reg.Sites = nil
			for _, s := range sites {
				id, rest, ok1 := strings.Cut(s, "=")
				org, invs, ok2 := strings.Cut(rest, ":")
				if !ok1 || !ok2 {
					return fmt.Errorf("--site %q: want ID=ORG:INVESTIGATOR[,INVESTIGATOR...]: %w", s, errUsage)
				}
				site := trials.Site{ID: id}
				if site.Org, err = resolveAddr(f.home, org); err != nil {
					return err
				}
				for _, inv := range strings.Split(invs, ",") {
					a, err := resolveAddr(f.home, inv)
					if err != nil {
						return err
					}
					site.Investigators = append(site.Investigators, a)
				}
				reg.Sites = append(reg.Sites, site)
			}
			if saltOut == "" {
				return fmt.Errorf("--salt-out is required (the results reveal the salt): %w", errUsage)
			}
			if err := fsutil.WriteFileAtomic(saltOut, salt, 0o600); err != nil {
				return err
			}
			return send(cmd, trials.TypeRegister, &reg)
		}}
	register.Flags().StringVar(&reg.ID, "id", "", "trial id (letters, digits, '-', '.': a FHIR id)")
	register.Flags().StringVar(&reg.Title, "title", "", "title")
	register.Flags().StringVar(&protocol, "protocol", "", "the protocol document (its SHA-256 goes on the ledger)")
	register.Flags().StringVar(&sap, "sap", "", "the statistical analysis plan document")
	register.Flags().StringVar(&outcomesFile, "outcomes", "", "JSON file of the pre-registered outcomes")
	register.Flags().StringVar(&saltOut, "salt-out", "", "file to keep the outcomes commitment's salt in")
	register.Flags().StringArrayVar(&sites, "site", nil, "ID=ORG:INVESTIGATOR[,INVESTIGATOR...] (repeatable; keys or addresses)")
	register.Flags().StringVar(&ethics, "ethics", "", "the ethics committee (an attested organization)")
	register.Flags().BoolVar(&reg.ApprovalRequired, "approval-required", false, "amendments take effect only once the ethics committee approves them")

	var am trials.Amend
	var amProtocol, amSAP string
	amend := &cobra.Command{Use: "amend", Short: "Propose the trial's next protocol version, with a reason (the sponsor)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if am.ProtocolHash, err = fileHash(amProtocol); err != nil {
				return err
			}
			if amSAP != "" {
				if am.SAPHash, err = fileHash(amSAP); err != nil {
					return err
				}
			}
			return send(cmd, trials.TypeAmend, &am)
		}}
	amend.Flags().StringVar(&am.Trial, "trial", "", "trial id")
	amend.Flags().StringVar(&amProtocol, "protocol", "", "the amended protocol document")
	amend.Flags().StringVar(&amSAP, "sap", "", "the amended analysis plan (default: unchanged)")
	amend.Flags().StringVar(&am.Reason, "reason", "", "why")
	amend.Flags().BoolVar(&am.Material, "material", false, "a material change: participants must consent again")

	var ap trials.Approve
	approve := &cobra.Command{Use: "approve", Short: "Approve a pending amendment (the trial's ethics committee)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return send(cmd, trials.TypeApprove, &ap) }}
	approve.Flags().StringVar(&ap.Trial, "trial", "", "trial id")
	approve.Flags().IntVar(&ap.Version, "version", 0, "the version to approve")

	var an trials.AnchorData
	anchor := &cobra.Command{Use: "anchor FILE...", Short: "Anchor case-report-form or dataset batches of a site (its investigators or organization)", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			an.Batches = nil
			for _, name := range files {
				h, err := fileHash(name)
				if err != nil {
					return err
				}
				an.Batches = append(an.Batches, h)
			}
			return send(cmd, trials.TypeAnchor, &an)
		}}
	anchor.Flags().StringVar(&an.Trial, "trial", "", "trial id")
	anchor.Flags().StringVar(&an.Site, "site", "", "site id")

	var lk trials.Lock
	lockCmd := &cobra.Command{Use: "lock", Short: "Lock the trial's database: no new data (the sponsor)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return send(cmd, trials.TypeLock, &lk) }}
	lockCmd.Flags().StringVar(&lk.Trial, "trial", "", "trial id")

	var rs trials.Results
	var rsOutcomes, rsSalt, rsDoc string
	results := &cobra.Command{Use: "results", Short: "Publish results against the pre-registered outcomes (the sponsor, after the lock)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if rs.Outcomes, err = readOutcomes(rsOutcomes); err != nil {
				return err
			}
			if rs.Salt, err = os.ReadFile(rsSalt); err != nil {
				return err
			}
			if rs.DocumentHash, err = fileHash(rsDoc); err != nil {
				return err
			}
			return send(cmd, trials.TypeResults, &rs)
		}}
	results.Flags().StringVar(&rs.Trial, "trial", "", "trial id")
	results.Flags().StringVar(&rsOutcomes, "outcomes", "", "the pre-registered outcomes (the JSON file registered)")
	results.Flags().StringVar(&rsSalt, "salt", "", "the salt file register wrote")
	results.Flags().StringVar(&rs.ReportedPrimary, "reported-primary", "", "the outcome the results report as primary")
	results.Flags().StringVar(&rsDoc, "document", "", "the results document")

	var co trials.Consent
	var coPatient string
	consentCmd := &cobra.Command{Use: "consent", Short: "Consent to take part in a trial (a patient, or a guardian with --for)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			a, _, err := f.open(ctx)
			if err != nil {
				return err
			}
			if coPatient != "" {
				if co.Patient, err = resolveAddr(f.home, coPatient); err != nil {
					return err
				}
			}
			height, err := a.ConsentToTrial(ctx, co)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "committed in block %d\n", height)
			return nil
		}}
	consentCmd.Flags().StringVar(&co.Trial, "trial", "", "trial id")
	consentCmd.Flags().StringVar(&co.Site, "site", "", "site id")
	consentCmd.Flags().IntVar(&co.Version, "version", 0, "the protocol version you read (the one in effect)")
	consentCmd.Flags().StringSliceVar(&co.Categories, "category", nil, "categories of your records the trial may use (repeat)")
	consentCmd.Flags().StringVar(&coPatient, "for", "", "the patient a guardian consents for")

	var wd trials.Withdraw
	var wdPatient string
	withdrawCmd := &cobra.Command{Use: "withdraw", Short: "Withdraw from a trial: no further use of your data from the next block", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if wdPatient != "" {
				if wd.Patient, err = resolveAddr(f.home, wdPatient); err != nil {
					return err
				}
			}
			return send(cmd, trials.TypeWithdraw, &wd)
		}}
	withdrawCmd.Flags().StringVar(&wd.Trial, "trial", "", "trial id")
	withdrawCmd.Flags().StringVar(&wdPatient, "for", "", "the patient a guardian withdraws")

	show := &cobra.Command{Use: "show ID", Short: "Show a trial: versions, approvals, site counts, results, outcome switching", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := client.New(f.nodeURL).Trial(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), t)
			if t.Results != nil && t.Results.OutcomeSwitched {
				fmt.Fprintf(cmd.OutOrStdout(), "OUTCOME SWITCHED: the results report %q as primary; the registered primary outcome is %q\n",
					t.Results.ReportedPrimary, t.Results.Outcomes.Primary)
			}
			return nil
		}}
	batches := &cobra.Command{Use: "batches ID", Short: "List a trial's anchored data batches: hash, site, who, when", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bs, err := client.New(f.nodeURL).TrialBatches(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), bs)
			return nil
		}}
	overseer := func(use, short string, list func(ctx context.Context, c *client.Client, id string) (any, error)) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
				defer cancel()
				k, err := loadKey(f.home, f.from)
				if err != nil {
					return err
				}
				s, err := client.NewSigner(ctx, client.New(f.nodeURL), k)
				if err != nil {
					return err
				}
				out, err := list(ctx, s.Reads(), args[0])
				if err != nil {
					return err
				}
				printJSON(cmd.OutOrStdout(), out)
				return nil
			}}
	}
	subjects := overseer("subjects ID", "List a trial's participants (its sponsor or a regulator, signing with --from)",
		func(ctx context.Context, c *client.Client, id string) (any, error) { return c.TrialSubjects(ctx, id) })
	reads := overseer("reads ID", "List the research reads a trial's e-consents allowed: who read whose records, when (its sponsor or a regulator)",
		func(ctx context.Context, c *client.Client, id string) (any, error) { return c.TrialReads(ctx, id) })
	cmd.AddCommand(register, amend, approve, anchor, lockCmd, results, consentCmd, withdrawCmd, show, batches, subjects, reads)
	return cmd
}

// readOutcomes reads a trial's outcomes from a JSON file.
func readOutcomes(name string) (trials.Outcomes, error) {
	var o trials.Outcomes
	raw, err := os.ReadFile(name)
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(raw, &o); err != nil || o.Primary == "" {
		return o, fmt.Errorf("%s: want {\"primary\": ..., \"secondary\": [...]} (%v)", name, err)
	}
	return o, nil
}
