package agent_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/consent"
	"github.com/medchain/medchain/fhir"
	"github.com/medchain/medchain/tx"
)

// rawRequest opens a connection to srv and sends a request's head (and the first part of its
// body), leaving the connection open.
func rawRequest(t *testing.T, srv *httptest.Server, head string, body []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write(append([]byte(head), body...)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// answer reads the response to a raw request, within d.
func answer(t *testing.T, conn net.Conn, d time.Duration) *http.Response {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", d, err)
	}
	resp.Body.Close()
	return resp
}

func postHead(length string) string {
	h := "POST /fhir/Observation HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer " + token + "\r\nContent-Type: application/fhir+json\r\n"
	if length == "chunked" {
		return h + "Transfer-Encoding: chunked\r\n\r\n"
	}
	return h + "Content-Length: " + length + "\r\n\r\n"
}

// Finding 15: six concurrent 4 MB posts drove the agent to 1 GB resident. The facade now holds at
// most its body budget (two maximal bodies by default) of request bodies at once, reserved
// before a body is read: a request that does not fit in time is answered 503 with Retry-After
// instead of being read and queued; room comes back when a request ends.
func TestAttackConcurrentLargePosts(t *testing.T) {
	w := startWorld(t)
	a := agent.New(w.keys["doctor"], agent.Config{Patients: map[string]tx.Address{"example": w.keys["patient"].Address()}, BodyWait: 300 * time.Millisecond})
	srv := httptest.NewServer(agent.NewFacade(a, token, nil))
	t.Cleanup(srv.Close) // after the raw connections are closed
	big := fmt.Sprint(fhir.MaxResourceBytes)

	// Two maximal posts whose bodies are still arriving hold the budget.
	var holders []net.Conn
	for range agent.DefaultBodyBudget / fhir.MaxResourceBytes {
		holders = append(holders, rawRequest(t, srv, postHead(big), []byte(`{"resourceType":`)))
	}
	time.Sleep(200 * time.Millisecond) // let the facade admit them
	// The next large post, declared or chunked, is refused before its body is read.
	for _, length := range []string{big, "chunked", fmt.Sprint(fhir.MaxResourceBytes / 2)} {
		start := time.Now()
		resp := answer(t, rawRequest(t, srv, postHead(length), nil), 10*time.Second)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("post of %s bytes beyond the budget: %s, Retry-After %q", length, resp.Status, resp.Header.Get("Retry-After"))
		}
		t.Logf("refused after %v", time.Since(start))
	}
	// Over the resource limit: refused at once, whatever the budget.
	if resp := answer(t, rawRequest(t, srv, postHead(fmt.Sprint(fhir.MaxResourceBytes+1)), nil), 10*time.Second); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("post over the limit: %s", resp.Status)
	}
	// Small requests still fit beside the two large ones (this one is then refused by consent).
	fc := &facadeClient{t: t, base: srv.URL}
	if status, _, body := fc.do("GET", "/fhir/Observation?patient=example", nil, true); status != http.StatusOK {
		t.Fatalf("search beside the large posts: %d %s", status, body)
	}
	if status, _, body := fc.do("POST", "/fhir/Observation", observation("example", "80"), true); status != http.StatusForbidden {
		t.Fatalf("small post beside the large posts: %d %s", status, body)
	}

	// When the holders go away, their room comes back.
	for _, c := range holders {
		c.Close()
	}
	if _, err := w.agent("patient", "TREAT").Grant(w.ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(1), Write: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, _, body := fc.do("POST", "/fhir/DocumentReference", bigDocument(fhir.MaxResourceBytes-64<<10), true)
		if status == http.StatusCreated {
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("large post after the holders left: %d %.300s", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bigDocument is a valid DocumentReference about the demo patient of about size bytes.
func bigDocument(size int) []byte {
	data := base64.StdEncoding.EncodeToString(make([]byte, (size-400)*3/4))
	return []byte(`{"resourceType":"DocumentReference","status":"current","subject":{"reference":"Patient/example"},` +
		`"content":[{"attachment":{"contentType":"application/pdf","data":"` + data + `"}}]}`)
}

// bigObservation is a valid Observation about the demo patient of about size bytes made of many
// small elements (components), the costly shape for a validating parser.
func bigObservation(size int) []byte {
	var b strings.Builder
	b.WriteString(`{"resourceType":"Observation","status":"final","code":{"text":"panel"},"subject":{"reference":"Patient/example"},"component":[`)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"code":{"coding":[{"system":"http://loinc.org","code":"%d-%d"}]},"valueQuantity":{"value":%d,"unit":"mg"}}`, i, i%10, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// hangingServer accepts requests and never answers them; trickle writes a status and then one
// byte of body every 100 ms instead.
func hangingServer(t *testing.T, trickle bool) *httptest.Server {
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if trickle {
			w.WriteHeader(http.StatusOK)
			for {
				w.Write([]byte(" "))
				w.(http.Flusher).Flush()
				select {
				case <-done:
					return
				case <-r.Context().Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) }) // runs first: releases the handlers
	return srv
}

// returnsTimeout runs call and fails unless it returns, within the test's own deadline, a
// timeout error.
func returnsTimeout(t *testing.T, what string, call func() error) {
	t.Helper()
	returnsError(t, what, true, call)
}

// returnsError runs call and fails unless it returns an error (a timeout if timeout is set)
// within the test's own deadline.
func returnsError(t *testing.T, what string, timeout bool, call func() error) {
	t.Helper()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- call() }()
	select {
	case err := <-errc:
		var ne net.Error
		if err == nil || timeout && !(errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)) {
			t.Errorf("%s: err = %v, want a timeout", what, err)
		}
		t.Logf("%s: %v after %v", what, err, time.Since(start).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Errorf("%s: still waiting after 20 s", what)
	}
}

// Finding 18: a hostile peer that accepts a connection and never answers (or trickles its
// answer) cannot hang the client or the agent: node API calls and organization agent calls have
// timeouts.
func TestAttackHangingPeers(t *testing.T) {
	if client.DefaultTimeout <= 0 || client.DefaultTimeout > time.Minute || agent.DefaultReleaseTimeout <= 0 || agent.DefaultReleaseTimeout > time.Minute {
		t.Fatalf("default timeouts %v, %v", client.DefaultTimeout, agent.DefaultReleaseTimeout)
	}
	for _, trickle := range []bool{false, true} {
		srv := hangingServer(t, trickle)
		c := client.New(srv.URL, client.WithTimeout(500*time.Millisecond))
		ctx := context.Background()
		name := map[bool]string{false: "silent", true: "trickling"}[trickle]
		returnsTimeout(t, name+" node: status", func() error { _, err := c.Status(ctx); return err })
		returnsTimeout(t, name+" node: audit", func() error {
			_, err := c.Audit(ctx, tx.Address(strings.Repeat("a", 40)), client.AuditFilter{})
			return err
		})
		returnsTimeout(t, name+" node: submit", func() error { _, err := c.Submit(ctx, []byte("{}"), "check"); return err })
		returnsTimeout(t, name+" node: signer", func() error { _, err := client.NewSigner(ctx, c, nil); return err })
	}
	// A network key holder that hangs is bounded by Config.ReleaseTimeout: the e2e test of a
	// stopped validator (test/e2e) reads through the others.
}

// vmHWM is this process's peak resident set size (VmHWM in /proc/self/status), in MiB.
func vmHWM(t *testing.T) float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status: ", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	t.Skip("no VmHWM")
	return 0
}

// TestLargePostsPeakRSS measures finding 15's load: N concurrent ~4 MB FHIR posts to the dev
// doctor's agent (with its node, in this process), retried after Retry-After when refused, and
// the process's peak RSS before and after. Not an assertion (absolute memory depends on the
// machine); run it on its own, once per budget:
//
//	MEDCHAIN_RSS_BENCH=bounded   go test -run TestLargePostsPeakRSS -v ./agent/
//	MEDCHAIN_RSS_BENCH=unbounded go test -run TestLargePostsPeakRSS -v ./agent/
func TestLargePostsPeakRSS(t *testing.T) {
	mode := os.Getenv("MEDCHAIN_RSS_BENCH")
	if mode == "" {
		t.Skip("set MEDCHAIN_RSS_BENCH=bounded|unbounded to measure")
	}
	n := 6
	if v := os.Getenv("MEDCHAIN_RSS_POSTS"); v != "" {
		fmt.Sscan(v, &n)
	}
	w := startWorld(t)
	if _, err := w.agent("patient", "TREAT").Grant(w.ctx, consent.GrantMsg{Grantee: w.keys["doctor"].Address(), Categories: []string{consent.AllCategories},
		Purposes: []string{"TREAT"}, Expiry: w.later(1), Write: true}); err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{Patients: map[string]tx.Address{"example": w.keys["patient"].Address()}, BodyWait: -1}
	if mode == "unbounded" {
		cfg.BodyBudget = -1
	}
	srv := httptest.NewServer(agent.NewFacade(agent.New(w.keys["doctor"], cfg), token, nil))
	defer srv.Close()
	doc, typ := bigDocument(fhir.MaxResourceBytes-64<<10), "DocumentReference"
	if os.Getenv("MEDCHAIN_RSS_DOC") == "structured" {
		doc, typ = bigObservation(fhir.MaxResourceBytes-64<<10), "Observation"
	}
	post := func() (int, time.Duration) {
		req, _ := http.NewRequest("POST", srv.URL+"/fhir/"+typ, strings.NewReader(string(doc)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Prefer", "return=minimal")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, 0
		}
		resp.Body.Close()
		after, _ := time.ParseDuration(resp.Header.Get("Retry-After") + "s")
		return resp.StatusCode, after
	}
	if status, _ := post(); status != http.StatusCreated { // warm up: one post alone
		t.Fatalf("warm-up post: %d", status)
	}
	before := vmHWM(t)
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				status, after := post()
				if status != http.StatusServiceUnavailable {
					if status != http.StatusCreated {
						t.Errorf("post: %d", status)
					}
					return
				}
				mu.Lock()
				refused++
				mu.Unlock()
				time.Sleep(after)
			}
		}()
	}
	wg.Wait()
	t.Logf("%s budget: %d concurrent posts of %.1f MiB in %v (%d answers 503 + Retry-After, retried); peak RSS %.0f MiB before, %.0f MiB after",
		mode, n, float64(len(doc))/(1<<20), time.Since(start).Round(time.Millisecond), refused, before, vmHWM(t))
}
