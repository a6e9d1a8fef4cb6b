package atna_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/medchain/medchain/atna"
)

// pki is a test CA with a server certificate for 127.0.0.1 and a client certificate.
type pki struct {
	pool           *x509.CertPool
	server, client tls.Certificate
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test audit CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &pki{pool: pool, server: leaf(2, x509.ExtKeyUsageServerAuth), client: leaf(3, x509.ExtKeyUsageClientAuth)}
}

// collector is a syslog receiver over a stream (octet counting), parsing with go-syslog.
type collector struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []*rfc5424.SyslogMessage
	errs []error
	got  chan struct{}
}

func startCollector(t *testing.T, ln net.Listener) *collector {
	c := &collector{ln: ln, got: make(chan struct{}, 1000)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				octetcounting.NewParser(syslog.WithListener(func(r *syslog.Result) {
					c.mu.Lock()
					defer c.mu.Unlock()
					if r.Error != nil {
						c.errs = append(c.errs, r.Error)
						return
					}
					c.msgs = append(c.msgs, r.Message.(*rfc5424.SyslogMessage))
					c.got <- struct{}{}
				})).Parse(conn)
			}()
		}
	}()
	return c
}

func (c *collector) wait(t *testing.T, n int) []*rfc5424.SyslogMessage {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		have := len(c.msgs)
		c.mu.Unlock()
		if have >= n {
			break
		}
		select {
		case <-c.got:
		case <-deadline:
			t.Fatalf("collector got %d messages, want %d (errors: %v)", have, n, c.errs)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*rfc5424.SyslogMessage(nil), c.msgs...)
}

func event(i int, denied bool) atna.Event {
	return atna.Event{Time: time.Date(2026, 12, 7, 10, 0, i, 0, time.UTC), Denied: denied,
		JSON: []byte(`{"resourceType":"AuditEvent","id":"` + string(rune('a'+i)) + `","outcome":"0"}`)}
}

func closeForwarder(t *testing.T, f *atna.Forwarder) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Error(err)
	}
}

// TestForwardOverMutualTLS: events reach a TLS collector that checks the node's client
// certificate, in order, as RFC 5424 messages with ATNA's facility and severities and the
// AuditEvent as MSG.
func TestForwardOverMutualTLS(t *testing.T) {
	p := newPKI(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	c := startCollector(t, ln)
	f, err := atna.New(atna.Config{URL: "tls://" + ln.Addr().String(), TLS: &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.client}}, Hostname: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		f.Send(event(i, i == 2))
	}
	msgs := c.wait(t, 3)
	closeForwarder(t, f)
	for i, m := range msgs {
		want := event(i, i == 2)
		sev := uint8(5)
		if want.Denied {
			sev = 4
		}
		if *m.Facility != 10 || *m.Severity != sev || *m.Appname != "medchain" || *m.Hostname != "node-a" || *m.MsgID != "AuditEvent" ||
			!m.Timestamp.Equal(want.Time) || *m.Message != string(want.JSON) {
			t.Errorf("message %d: facility %d severity %d app %s host %s msgid %s time %v msg %s", i, *m.Facility, *m.Severity, *m.Appname, *m.Hostname, *m.MsgID, m.Timestamp, *m.Message)
		}
		if sd := *m.StructuredData; sd["fhir@32473"]["format"] != "application/fhir+json" {
			t.Errorf("message %d: structured data %v", i, sd)
		}
	}
	if sent, dropped := f.Stats(); sent != 3 || dropped != 0 {
		t.Errorf("stats: sent %d dropped %d", sent, dropped)
	}
}

// TestForwardAfterCollectorOutage: events sent while the collector is down, and one whose
// connection the collector cut, are delivered once it is back.
func TestForwardAfterCollectorOutage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // down
	f, err := atna.New(atna.Config{URL: "tcp://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		f.Send(event(i, false))
	}
	time.Sleep(700 * time.Millisecond) // at least one failed dial
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	c := startCollector(t, ln)
	msgs := c.wait(t, 4)
	closeForwarder(t, f)
	for i, m := range msgs[:4] {
		if *m.Message != string(event(i, false).JSON) {
			t.Errorf("message %d out of order or wrong: %s", i, *m.Message)
		}
	}
}

// TestForwardOverUDP: one datagram per event.
func TestForwardOverUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	f, err := atna.New(atna.Config{URL: "udp://" + pc.LocalAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	f.Send(event(0, true))
	buf := make([]byte, 70000)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	closeForwarder(t, f)
	m, err := rfc5424.NewMachine().Parse(buf[:n])
	if err != nil {
		t.Fatalf("datagram %q: %v", buf[:n], err)
	}
	sm := m.(*rfc5424.SyslogMessage)
	if *sm.Severity != 4 || *sm.Message != string(event(0, true).JSON) {
		t.Errorf("datagram: severity %d msg %s", *sm.Severity, *sm.Message)
	}
}

// TestAttackForwarder: a collector whose certificate the configured CA did not sign gets
// nothing (the handshake fails before a byte of an event is sent); an oversized event and the
// events that find the queue full are dropped and counted, and Send never blocks; bad collector
// URLs are refused.
func TestAttackForwarder(t *testing.T) {
	p, other := newPKI(t), newPKI(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{other.server}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var received bytes.Buffer
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 4096)
				for {
					n, err := conn.Read(buf)
					mu.Lock()
					received.Write(buf[:n])
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	defer ln.Close()
	f, err := atna.New(atna.Config{URL: "tls://" + ln.Addr().String(), TLS: &tls.Config{RootCAs: p.pool}, Queue: 4})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 100 {
		f.Send(event(i%20, false))
	}
	f.Send(atna.Event{Time: time.Now(), JSON: bytes.Repeat([]byte("x"), atna.MaxMessage)})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send blocked for %v", d)
	}
	time.Sleep(time.Second)
	mu.Lock()
	leaked := strings.Contains(received.String(), "AuditEvent")
	mu.Unlock()
	if leaked {
		t.Error("an impostor collector received an event")
	}
	if sent, dropped := f.Stats(); sent != 0 || dropped < 100-4-1 {
		t.Errorf("stats: sent %d, dropped %d", sent, dropped)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := f.Close(ctx); err == nil {
		t.Error("Close reported every event sent to an impostor")
	}

	for _, u := range []string{"", "syslog://127.0.0.1:514", "tls://127.0.0.1", "http://x:1", "udp://:"} {
		if _, err := atna.New(atna.Config{URL: u}); err == nil {
			t.Errorf("collector %q accepted", u)
		}
	}
	if _, err := atna.New(atna.Config{URL: "udp://127.0.0.1:514", TLS: &tls.Config{}}); err == nil {
		t.Error("TLS settings with a UDP collector accepted")
	}
}
