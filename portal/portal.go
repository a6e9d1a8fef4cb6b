// Package portal is the agent's web portal (issue 13): server-rendered pages (html/template,
// embedded assets, no build step) for patients, clinicians, pharmacists and operators, on the
// agent's address. Unlocking a key of the local keyring is the login: the session cookie is
// HttpOnly and SameSite=Strict, and every form carries the session's CSRF token. In development
// (Config.Dev) a switcher logs in as any of the home's unencrypted demo keys.
package portal

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/tx"
)

//go:embed web
var webFS embed.FS

// Config configures a portal.
type Config struct {
	// Keyring holds the accounts one may log in as (a home's keyring).
	Keyring *keyring.File
	// Node is the API of the node the agents talk to.
	Node *client.Client
	// Trust, when set, makes every session's agent verify what it relies on (see agent.Config).
	Trust *client.Trust
	// Patients maps FHIR Patient ids to accounts for the sessions' agents.
	Patients map[string]tx.Address
	// ServiceKeys are the policies' service keys a provider's session bills with.
	ServiceKeys map[string][]byte
	// Dev shows the switcher among the keyring's unencrypted demo keys.
	Dev bool
	// Hosts are the host names the portal answers besides loopback ones (its public name behind
	// a proxy); a request for another (DNS rebinding) is refused.
	Hosts []string
	Log   *slog.Logger
}

// Limits of the session store.
const (
	SessionLifetime = 8 * time.Hour
	MaxSessions     = 1000
	cookieName      = "medchain_session"
)

// Server is the portal's HTTP handler.
type Server struct {
	cfg   Config
	pages map[string]*template.Template
	mux   *http.ServeMux

	mu       sync.Mutex
	sessions map[string]*session

	ledgerNames sync.Map // tx.Address -> its name on the ledger (nameOf)
	ledgerCount atomic.Int64
}

// session is one logged-in account.
type session struct {
	id      string
	CSRF    string // every form's token
	Name    string // the key's name
	Role    identity.Role
	account tx.Address
	orgKind string
	agent   *agent.Agent
	signer  *client.Signer
	reads   *client.Client // signed reads as the account
	expires time.Time
}

// validToken reports whether token is the session's CSRF token (compared in constant time).
func (ses *session) validToken(token string) bool {
	return subtle.ConstantTimeCompare([]byte(token), []byte(ses.CSRF)) == 1
}

// loopbackHosts are the hosts the portal answers without Config.Hosts.
var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// New returns a portal.
func New(cfg Config) (*Server, error) {
	if cfg.Keyring == nil || cfg.Node == nil {
		return nil, errors.New("portal: a keyring and a node are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, pages: map[string]*template.Template{}, sessions: map[string]*session{}, mux: http.NewServeMux()}
	layout, err := fs.ReadFile(webFS, "web/layout.html")
	if err != nil {
		return nil, err
	}
	names, _ := fs.Glob(webFS, "web/page-*.html")
	for _, n := range names {
		t := template.Must(template.New("layout").Funcs(funcs).Parse(string(layout)))
		if _, err := t.ParseFS(webFS, n, "web/timeline.html"); err != nil {
			return nil, fmt.Errorf("portal: template %s: %w", n, err)
		}
		s.pages[n[len("web/page-"):len(n)-len(".html")]] = t
	}
	static, _ := fs.Sub(webFS, "web/static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.in(s.logout))
	s.mux.HandleFunc("GET /{$}", s.in(s.home))
	s.routes()
	return s, nil
}

// ServeHTTP serves the portal with its security headers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" would make browsers send Origin: null
	h.Set("Cache-Control", "no-store")
	// A request for a host name the portal does not serve is refused: a rebinding DNS name
	// pointed at it would make its own Origin match the Host.
	host := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		host = h
	}
	if !slices.Contains(loopbackHosts, strings.Trim(host, "[]")) && !slices.Contains(s.cfg.Hosts, host) {
		http.Error(w, "this portal does not answer for host "+host, http.StatusMisdirectedRequest)
		return
	}
	// A form posted from another site (the login form included, which has no session token
	// yet) is refused by its Origin, which browsers send with every POST.
	if r.Method == http.MethodPost {
		if o := r.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			if err != nil || u.Host != r.Host {
				http.Error(w, "cross-site form refused", http.StatusForbidden)
				return
			}
		}
	}
	s.mux.ServeHTTP(w, r)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// page is what every template gets: the session (nil before login), the page's data, a
// message to show and the CSRF token of its forms.
type page struct {
	S       *session
	Title   string
	Data    any
	Message string
	Error   string
	Dev     bool
}

func (s *Server) render(w http.ResponseWriter, status int, name string, p page) {
	t := s.pages[name]
	if t == nil {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	p.Dev = s.cfg.Dev
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", p); err != nil {
		s.cfg.Log.Error("portal: render", "page", name, "err", err)
	}
}

// renderPart renders one template of a page alone (a part a page's script refreshes).
func (s *Server) renderPart(w http.ResponseWriter, name, part string, p page) {
	t := s.pages[name]
	if t == nil || t.Lookup(part) == nil {
		http.Error(w, "no such part", http.StatusInternalServerError)
		return
	}
	p.Dev = s.cfg.Dev
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := t.ExecuteTemplate(w, part, p); err != nil {
		s.cfg.Log.Error("portal: render", "page", name, "part", part, "err", err)
	}
}

// fail shows an error on a page of its own: a clear message, never a stack or a key.
func (s *Server) fail(w http.ResponseWriter, ses *session, status int, msg string) {
	s.render(w, status, "error", page{S: ses, Title: "Something went wrong", Error: msg})
}

// in wraps a handler that needs a session: no session redirects to the login page; a POST
// without the session's CSRF token is refused.
func (s *Server) in(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ses := s.sessionOf(r)
		if ses == nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !ses.validToken(r.PostFormValue("csrf")) {
				s.fail(w, ses, http.StatusForbidden, "This form has expired or did not come from this portal. Go back, reload the page and try again.")
				return
			}
		}
		h(w, r, ses)
	}
}

func (s *Server) sessionOf(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ses := s.sessions[c.Value]
	if ses == nil || time.Now().After(ses.expires) {
		delete(s.sessions, c.Value)
		return nil
	}
	return ses
}

// account is a key of the keyring as the login page lists it.
type account struct {
	Name    string
	Address tx.Address
	Dev     bool
}

func (s *Server) accounts() []account {
	keys, err := s.cfg.Keyring.List()
	if err != nil {
		return nil
	}
	var out []account
	for _, k := range keys {
		out = append(out, account{Name: k.Name, Address: k.Address, Dev: k.DevUnlocked})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "login", page{Title: "Log in", Data: s.accounts()})
}

// login unlocks a key of the keyring with its passphrase (a dev key needs none, and only in dev
// mode) and opens a session as its account.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	name, pass := r.PostFormValue("account"), r.PostFormValue("passphrase")
	again := func(msg string) {
		s.render(w, http.StatusUnauthorized, "login", page{Title: "Log in", Data: s.accounts(), Error: msg})
	}
	pub, err := s.cfg.Keyring.Show(name)
	if err != nil {
		again("There is no account of that name in this keyring.")
		return
	}
	if pub.DevUnlocked && !s.cfg.Dev {
		again("That is an unencrypted development key; it logs in only in development mode.")
		return
	}
	k, err := s.cfg.Keyring.Get(name, pass)
	if err != nil {
		again("Wrong passphrase.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	signer, err := client.NewSigner(ctx, s.cfg.Node, k)
	if err != nil {
		again("The node is not answering; try again in a moment.")
		return
	}
	acc, _, err := s.cfg.Node.Account(ctx, k.Address, false)
	if err != nil {
		again("This key has no account on the ledger yet.")
		return
	}
	ses := &session{id: randomHex(32), CSRF: randomHex(32), Name: name, account: k.Address, Role: acc.Role, orgKind: acc.OrgKind,
		agent:  agent.New(signer, agent.Config{Patients: s.cfg.Patients, Trust: s.cfg.Trust, ServiceKeys: s.cfg.ServiceKeys}),
		signer: signer, reads: signer.Reads(), expires: time.Now().Add(SessionLifetime)}
	s.mu.Lock()
	now := time.Now()
	for id, old := range s.sessions {
		if now.After(old.expires) {
			delete(s.sessions, id)
		}
	}
	if len(s.sessions) >= MaxSessions {
		s.mu.Unlock()
		again("Too many people are logged in to this portal; try again later.")
		return
	}
	s.sessions[ses.id] = ses
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: ses.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, Expires: ses.expires})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, ses *session) {
	s.mu.Lock()
	delete(s.sessions, ses.id)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// home sends each account to its first page.
func (s *Server) home(w http.ResponseWriter, r *http.Request, ses *session) {
	switch {
	case ses.Role == identity.RolePatient:
		http.Redirect(w, r, "/records", http.StatusSeeOther)
	case ses.orgKind == "pharmacy":
		http.Redirect(w, r, "/pharmacy", http.StatusSeeOther)
	case ses.Role == identity.RolePractitioner || ses.orgKind == "hospital" || ses.orgKind == "lab":
		http.Redirect(w, r, "/patients", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/network", http.StatusSeeOther)
	}
}
