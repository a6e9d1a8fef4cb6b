package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/atna"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/portal"
	"github.com/medchain/medchain/smart"
	"github.com/medchain/medchain/tx"
)

// agentFlags configure an agent, for the long-running server and for one-shot CLI commands.
type agentFlags struct {
	txFlags
	patients  []string // fhirID=account
	purpose   string
	trustNode bool // believe the node without proofs
	audit     agent.AuditSink
	services  []string // insurer/policy=keyfile
}

func (f *agentFlags) register(cmd *cobra.Command) {
	f.txFlags.register(cmd)
	cmd.PersistentFlags().StringArrayVar(&f.patients, "patient", nil, "map a FHIR Patient id to an account: ID=ADDRESS|KEYNAME (repeatable)")
	cmd.PersistentFlags().StringVar(&f.purpose, "purpose", "TREAT", "purpose of use (HL7 v3 PurposeOfUse) of reads and writes")
	cmd.PersistentFlags().BoolVar(&f.trustNode, "trust-node", false, "believe the node's answers without proofs (development only)")
	cmd.PersistentFlags().StringArrayVar(&f.services, "service-key", nil, "a policy's service key, for claims: INSURER/POLICY=KEYFILE (repeatable; the insurer shares it)")
}

// open builds the agent for --from against --node (one or several nodes).
func (f *agentFlags) open(ctx context.Context) (*agent.Agent, *client.Signer, error) {
	if f.from == "" {
		return nil, nil, fmt.Errorf("--from is required: %w", errUsage)
	}
	k, err := loadKey(f.home, f.from)
	if err != nil {
		return nil, nil, err
	}
	s, err := client.NewSigner(ctx, client.New(f.nodeURL), k)
	if err != nil {
		return nil, nil, fmt.Errorf("node at %s: %w", f.nodeURL, err)
	}
	s.Log = slog.Default()
	cfg := agent.Config{Purpose: f.purpose, Audit: f.audit}
	if cfg.Patients, err = f.patientMap(); err != nil {
		return nil, nil, err
	}
	if cfg.ServiceKeys, err = f.serviceKeys(); err != nil {
		return nil, nil, err
	}
	if !f.trustNode {
		if cfg.Trust, err = f.openTrust(ctx, s); err != nil {
			return nil, nil, err
		}
	}
	if cfg.Custody, err = agent.OpenCustody(f.home, k, slog.Default()); err != nil {
		return nil, nil, err
	}
	return agent.New(s, cfg), s, nil
}

// patientMap is --patient's FHIR ids and accounts.
func (f *agentFlags) patientMap() (map[string]tx.Address, error) {
	out := map[string]tx.Address{}
	for _, kv := range f.patients {
		id, acct, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--patient %q: want ID=ADDRESS: %w", kv, errUsage)
		}
		addr, err := resolveAddr(f.home, acct)
		if err != nil {
			return nil, err
		}
		out[id] = addr
	}
	return out, nil
}

// serviceKeys is --service-key's policies' service keys (nil if none).
func (f *agentFlags) serviceKeys() (map[string][]byte, error) {
	var out map[string][]byte
	for _, kv := range f.services {
		name, file, ok := strings.Cut(kv, "=")
		ins, policy, ok2 := strings.Cut(name, "/")
		if !ok || !ok2 {
			return nil, fmt.Errorf("--service-key %q: want INSURER/POLICY=KEYFILE: %w", kv, errUsage)
		}
		addr, err := resolveAddr(f.home, ins)
		if err != nil {
			return nil, err
		}
		key, err := readServiceKey(file)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[string(addr)+"/"+policy] = key
	}
	return out, nil
}

// portal builds the web portal for the home's keyring (each login unlocks a key with its
// passphrase; demo keys are refused outside `medchain dev`).
func (f *agentFlags) portal(ctx context.Context, s *client.Signer, publicURL string, log *slog.Logger) (*portal.Server, func(), error) {
	kr, err := keyring.OpenFile(node.KeyringDir(f.home))
	if err != nil {
		return nil, nil, err
	}
	cfg := portal.Config{Keyring: kr, Node: s.C, Log: log}
	if publicURL != "" { // the portal answers its public name too, besides loopback ones
		u, err := url.Parse(publicURL)
		if err != nil || u.Hostname() == "" {
			return nil, nil, fmt.Errorf("--public-url %q: want a URL such as https://agent.example.org: %w", publicURL, errUsage)
		}
		cfg.Hosts = []string{u.Hostname()}
	}
	if cfg.Patients, err = f.patientMap(); err != nil {
		return nil, nil, err
	}
	if cfg.ServiceKeys, err = f.serviceKeys(); err != nil {
		return nil, nil, err
	}
	closeTrust := func() {}
	if !f.trustNode {
		if cfg.Trust, err = f.openTrust(ctx, s); err != nil {
			return nil, nil, err
		}
		closeTrust = func() { cfg.Trust.Close() }
	}
	p, err := portal.New(cfg)
	if err != nil {
		closeTrust()
		return nil, nil, err
	}
	return p, closeTrust, nil
}

// reader returns a client of --node that signs its reads as --from (by default the PATIENT
// argument, when it names a key of the home): patient data (records, grants, audit, emergency
// sessions) is answered only to signed reads, with what that account may see.
func (f *agentFlags) reader(ctx context.Context, args []string) (patientReader, error) {
	from := f.from
	if from == "" && len(args) == 1 {
		from = args[0]
	}
	if from == "" {
		return patientReader{}, fmt.Errorf("--from is required (patient data is answered only to a signed read): %w", errUsage)
	}
	k, err := loadKey(f.home, from)
	if err != nil {
		return patientReader{}, fmt.Errorf("sign the read with --from (%w)", err)
	}
	s, err := client.NewSigner(ctx, client.New(f.nodeURL), k)
	if err != nil {
		return patientReader{}, fmt.Errorf("node at %s: %w", f.nodeURL, err)
	}
	return patientReader{Client: s.Reads(), agent: agent.New(s, agent.Config{})}, nil
}

// patientReader is a client that signs its reads as --from, with that account's agent to name
// the categories it reads (tags of a patient whose tag key the account may hold) and to tag
// the ones it asks about.
type patientReader struct {
	*client.Client
	agent *agent.Agent
}

// names returns categories as names where the account may read the patient's tags.
func (r patientReader) names(ctx context.Context, patient tx.Address, categories ...string) []string {
	return r.agent.CategoryNames(ctx, patient, categories)
}

// openTrust prepares the light client that checks what the agent relies on, with light blocks
// from the --node APIs (the first is its primary, the others its witnesses).
func (f *agentFlags) openTrust(_ context.Context, s *client.Signer) (*client.Trust, error) {
	return client.NewTrust(f.home, strings.Join(s.C.Nodes(), ","), s.ChainID)
}

func agentCmd() *cobra.Command {
	f := &agentFlags{}
	var syslog syslogFlags
	var listen string
	var devToken bool
	var publicURL string
	withPortal := true
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run an agent: one account's keys, record crypto and the FHIR R4 REST facade",
		Long: `Runs the agent for the --from account: it validates FHIR resources, encrypts them for the
recipients the patient's consent requires, stores ciphertext on the node and anchors it, and
decrypts what the account may read. EHRs and apps use its FHIR API at http://LISTEN/fhir with
SMART on FHIR access tokens (http://LISTEN/fhir/.well-known/smart-configuration): backend
services and apps are registered in <home>/smart-clients.json, a JSON array of
{"client_id", "name", "scope", "jwks" (a backend service's public keys), "redirect_uris" and
"origins" (an app's)}. An app launch is approved with the agent's local token, <home>/agent.token
(generated at first start); --dev-token also accepts that token as a bearer token.

Give --node several nodes of the network (--node http://a:8080,http://b:8080) and the agent
keeps working when one is down: a request that cannot reach a node goes to the next, and a
transaction a crashed node admitted but never put in a block is re-sent, with the same nonce,
until it commits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if syslog.url != "" {
				fw, err := syslog.open(slog.Default())
				if err != nil {
					return err
				}
				defer func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if err := fw.Close(ctx); err != nil {
						slog.Error("audit forwarding", "err", err)
					}
				}()
				f.audit = fw
			}
			a, s, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			var web http.Handler
			if withPortal {
				p, closeTrust, err := f.portal(cmd.Context(), s, publicURL, slog.Default().With("module", "portal"))
				if err != nil {
					return fmt.Errorf("web portal: %w", err)
				}
				defer closeTrust()
				web = p
			}
			go checkClaims(cmd.Context(), a, slog.Default())
			return serveAgent(cmd.Context(), a, f.home, listen, agent.FacadeConfig{DevToken: devToken, PublicURL: publicURL}, web, slog.Default())
		},
	}
	f.register(cmd)
	syslog.register(cmd)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8081", "address of the FHIR facade")
	cmd.Flags().StringVar(&publicURL, "public-url", "", "scheme and host clients reach the FHIR API at, behind a proxy (https://agent.example.org); default: as each request arrives")
	cmd.Flags().BoolVar(&withPortal, "portal", true, "serve the web portal at http://LISTEN/ (log in by unlocking a key of the home's keyring with its passphrase)")
	cmd.Flags().BoolVar(&devToken, "dev-token", false, "also accept <home>/agent.token as a bearer token with every permission (local development only; clients use SMART tokens)")
	return cmd
}

// startAgent serves a's FHIR facade on listen in the background and returns its address and
// a stop function.
func startAgent(a *agent.Agent, home, listen string, fc agent.FacadeConfig, web http.Handler, log *slog.Logger) (string, func(), error) {
	token, err := agent.LoadOrCreateToken(home)
	if err != nil {
		return "", nil, err
	}
	clients, err := smart.LoadClients(agent.SMARTClientsFile(home))
	if err != nil {
		return "", nil, fmt.Errorf("SMART clients: %w", err)
	}
	auth, err := smart.New(clients, token)
	if err != nil {
		return "", nil, fmt.Errorf("SMART clients: %w", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", nil, fmt.Errorf("listen for the agent on %s: %w (is another agent running? use --listen)", listen, err)
	}
	fc.Token, fc.SMART = token, auth
	var handler http.Handler = agent.NewFacadeWith(a, fc, log)
	if web != nil { // the web portal at /, the FHIR API and SMART beside it
		mux := http.NewServeMux()
		mux.Handle("/fhir/", handler)
		mux.Handle("/fhir", handler)
		mux.Handle("/auth/", handler)
		mux.Handle("/", web)
		handler = mux
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 5 * time.Minute, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("agent server stopped", "err", err)
		}
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
	return ln.Addr().String(), stop, nil
}

// checkClaims deletes, at the agent's start, the custodial keys of patients who claimed their
// accounts meanwhile.
func checkClaims(ctx context.Context, a *agent.Agent, log *slog.Logger) {
	n, err := a.CheckClaims(ctx)
	if err != nil {
		log.Warn("could not check which custodial patients claimed their accounts", "err", err)
	}
	if n > 0 {
		log.Info("patients claimed their accounts; their custodial keys are deleted", "count", n)
	}
}

func serveAgent(ctx context.Context, a *agent.Agent, home, listen string, fc agent.FacadeConfig, web http.Handler, log *slog.Logger) error {
	addr, stop, err := startAgent(a, home, listen, fc, web, log)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("medchain agent for %s\n  FHIR API  http://%s/fhir  (SMART: http://%s/fhir/.well-known/smart-configuration; clients in %s)\n",
		a.Address(), addr, addr, agent.SMARTClientsFile(home))
	if web != nil {
		fmt.Printf("  portal    http://%s/  (log in with a key of %s and its passphrase)\n", addr, node.KeyringDir(home))
	}
	if fc.DevToken {
		fmt.Printf("  development token accepted: Authorization: Bearer $(cat %s)\n", agent.TokenFile(home))
	}
	<-ctx.Done()
	return nil
}

// syslogFlags configure forwarding the agent's audit events to an IHE ATNA Audit Record
// Repository (RFC 5424 syslog).
type syslogFlags struct {
	url, ca, cert, key string
}

func (s *syslogFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.url, "audit-syslog", "", "also send this account's access events, as FHIR AuditEvents in RFC 5424 syslog (IHE ATNA), to tls://host:port (RFC 5425), udp://host:port or tcp://host:port")
	cmd.Flags().StringVar(&s.ca, "audit-syslog-ca", "", "PEM file of the CA certificates a tls:// collector is checked against (default: the system's)")
	cmd.Flags().StringVar(&s.cert, "audit-syslog-cert", "", "PEM file of this node's client certificate for a tls:// collector (ATNA's mutual authentication)")
	cmd.Flags().StringVar(&s.key, "audit-syslog-key", "", "PEM file of the client certificate's private key")
}

// open starts the forwarder the flags describe.
func (s *syslogFlags) open(log *slog.Logger) (*atna.Forwarder, error) {
	var tc *tls.Config
	if s.ca != "" || s.cert != "" || s.key != "" {
		tc = &tls.Config{}
		if s.ca != "" {
			pem, err := os.ReadFile(s.ca)
			if err != nil {
				return nil, fmt.Errorf("--audit-syslog-ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--audit-syslog-ca %s holds no PEM certificate: %w", s.ca, errUsage)
			}
		}
		if (s.cert == "") != (s.key == "") {
			return nil, fmt.Errorf("--audit-syslog-cert and --audit-syslog-key go together: %w", errUsage)
		}
		if s.cert != "" {
			c, err := tls.LoadX509KeyPair(s.cert, s.key)
			if err != nil {
				return nil, fmt.Errorf("--audit-syslog-cert/--audit-syslog-key: %w", err)
			}
			tc.Certificates = []tls.Certificate{c}
		}
	}
	fw, err := atna.New(atna.Config{URL: s.url, TLS: tc, Log: log})
	if err != nil {
		return nil, fmt.Errorf("--audit-syslog: %w: %w", err, errUsage)
	}
	return fw, nil
}

// sendMsg signs and submits one message as --from.
func (f *txFlags) sendMsg(cmd *cobra.Command, typ string, msg any) error {
	_, _, err := f.send(cmd, typ, func(*keyring.Key, string, uint64) (any, error) { return msg, nil })
	return err
}

// withAgent runs fn with the --from account's agent, within timeout.
func (f *agentFlags) withAgent(cmd *cobra.Command, timeout time.Duration, fn func(ctx context.Context, a *agent.Agent) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	a, _, err := f.open(ctx)
	if err != nil {
		return err
	}
	return fn(ctx, a)
}
