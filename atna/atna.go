// Package atna forwards audit events to an Audit Record Repository as RFC 5424 syslog
// messages, the transport of IHE ATNA's Record Audit Event [ITI-20]: over TLS (RFC 5425, the
// secure transport ATNA requires between organizations), over UDP (RFC 5426), or over plain TCP
// with the same octet-counting framing (RFC 6587, for a collector on the same host).
//
// Each message carries one FHIR R4 AuditEvent (IHE BALP) as its JSON MSG, with facility 10
// (security/authorization) and severity 5 (notice), or 4 (warning) for a denied access, as ATNA
// asks. The ledger stays the audit of record (immutable, and readable by the patient); this is
// the organization's copy, sent at least once while the process runs: a message the collector
// did not take is sent again once it is reachable, and the queue in between is bounded (what
// does not fit is counted and logged, never blocks a read).
package atna

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"
)

// Limits and timings.
const (
	DefaultQueue   = 10_000   // messages waiting for the collector
	MaxMessage     = 64 << 10 // bytes of one syslog message (an AuditEvent is ~2 KiB)
	MaxUDPMessage  = 65_507   // bytes of one UDP datagram over IPv4
	dialTimeout    = 5 * time.Second
	writeTimeout   = 5 * time.Second
	minBackoff     = 500 * time.Millisecond
	maxBackoff     = 30 * time.Second
	facilityAuth   = 10 // security/authorization messages
	severityNotice = 5
	severityWarn   = 4
	// sdID names the structured data element that says what MSG holds (32473 is the
	// enterprise number RFC 5612 sets aside for documentation and examples).
	sdID = "fhir@32473"
)

// Config configures a Forwarder.
type Config struct {
	// URL is the collector: tls://host:port, udp://host:port or tcp://host:port.
	URL string
	// TLS configures tls:// (the collector's CA, this node's client certificate).
	TLS *tls.Config
	// Hostname and AppName fill the messages' headers (default: the host's name, "medchain").
	Hostname, AppName string
	// Queue bounds the messages waiting to be sent (default DefaultQueue).
	Queue int
	Log   *slog.Logger
}

// Event is one audit event to forward.
type Event struct {
	Time   time.Time
	Denied bool
	JSON   []byte // the FHIR AuditEvent
}

// Forwarder sends events to one collector from a bounded queue, in order.
type Forwarder struct {
	cfg     Config
	network string // "tcp" or "udp"
	addr    string
	queue   chan []byte
	log     *slog.Logger

	sent, dropped atomic.Uint64
	closeOnce     sync.Once
	stop          chan struct{} // closed by Close: send what is queued, then end
	abort         chan struct{} // closed when Close gives up: end now
	done          chan struct{}
}

// New checks cfg and starts forwarding.
func New(cfg Config) (*Forwarder, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || u.Port() == "" {
		return nil, fmt.Errorf("audit collector %q: want tls://host:port, udp://host:port or tcp://host:port", cfg.URL)
	}
	f := &Forwarder{cfg: cfg, addr: u.Host, stop: make(chan struct{}), abort: make(chan struct{}), done: make(chan struct{}), log: cfg.Log}
	switch u.Scheme {
	case "tls":
		f.network = "tcp"
		if cfg.TLS == nil {
			f.cfg.TLS = &tls.Config{}
		}
		f.cfg.TLS = f.cfg.TLS.Clone()
		if f.cfg.TLS.ServerName == "" {
			f.cfg.TLS.ServerName = u.Hostname()
		}
		f.cfg.TLS.MinVersion = max(f.cfg.TLS.MinVersion, tls.VersionTLS12)
	case "tcp", "udp":
		f.network = u.Scheme
		if cfg.TLS != nil {
			return nil, fmt.Errorf("audit collector %q: TLS settings need a tls:// collector", cfg.URL)
		}
	default:
		return nil, fmt.Errorf("audit collector %q: the scheme must be tls, udp or tcp", cfg.URL)
	}
	if f.cfg.Hostname == "" {
		f.cfg.Hostname, _ = os.Hostname()
	}
	if f.cfg.AppName == "" {
		f.cfg.AppName = "medchain"
	}
	if f.cfg.Queue <= 0 {
		f.cfg.Queue = DefaultQueue
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.queue = make(chan []byte, f.cfg.Queue)
	go f.run()
	return f, nil
}

// Message renders an event as an RFC 5424 syslog message.
func (f *Forwarder) Message(e Event) ([]byte, error) {
	sev := uint8(severityNotice)
	if e.Denied {
		sev = severityWarn
	}
	m := &rfc5424.SyslogMessage{}
	m.SetPriority(facilityAuth*8 + sev)
	m.SetVersion(1)
	m.SetTimestamp(e.Time.UTC().Format(time.RFC3339Nano))
	m.SetHostname(f.cfg.Hostname)
	m.SetAppname(f.cfg.AppName)
	m.SetProcID(strconv.Itoa(os.Getpid()))
	m.SetMsgID("AuditEvent")
	m.SetParameter(sdID, "format", "application/fhir+json")
	m.SetParameter(sdID, "profile", "IHE.BasicAudit")
	m.SetMessage(string(e.JSON))
	s, err := m.String()
	if err != nil {
		return nil, fmt.Errorf("syslog message: %w", err)
	}
	limit := MaxMessage
	if f.network == "udp" {
		limit = min(limit, MaxUDPMessage)
	}
	if len(s) > limit {
		return nil, fmt.Errorf("syslog message of %d bytes: at most %d", len(s), limit)
	}
	return []byte(s), nil
}

// Send queues an event; it never blocks. An event that cannot be rendered, or that finds the
// queue full, is counted as dropped and logged (without its content).
func (f *Forwarder) Send(e Event) {
	msg, err := f.Message(e)
	if err != nil {
		f.dropped.Add(1)
		f.log.Error("audit event not forwarded", "err", err)
		return
	}
	select {
	case f.queue <- msg:
	default:
		if n := f.dropped.Add(1); n == 1 || n%1000 == 0 {
			f.log.Error("audit collector queue full: events dropped (the ledger keeps them)", "dropped", n, "collector", f.cfg.URL)
		}
	}
}

// Stats returns how many events were sent and how many dropped.
func (f *Forwarder) Stats() (sent, dropped uint64) { return f.sent.Load(), f.dropped.Load() }

// Close sends what is queued and stops, or gives up when ctx ends.
func (f *Forwarder) Close(ctx context.Context) error {
	f.closeOnce.Do(func() { close(f.stop) })
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		left := len(f.queue)
		close(f.abort)
		<-f.done
		return fmt.Errorf("audit collector %s: %d events not sent: %w", f.cfg.URL, left, ctx.Err())
	}
}

// run sends the queue's messages in order, each until the collector takes it.
func (f *Forwarder) run() {
	defer close(f.done)
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	backoff := minBackoff
	for {
		var msg []byte
		select {
		case msg = <-f.queue:
		case <-f.stop:
			select {
			case msg = <-f.queue:
			default:
				return
			}
		}
		for {
			if conn == nil {
				c, err := f.dial()
				if err == nil {
					conn, backoff = c, minBackoff
				} else {
					f.log.Warn("audit collector unreachable", "collector", f.cfg.URL, "err", err, "retry_in", backoff)
					select {
					case <-time.After(backoff):
					case <-f.abort:
						return
					}
					backoff = min(2*backoff, maxBackoff)
					continue
				}
			}
			if err := f.write(conn, msg); err != nil {
				f.log.Warn("audit collector write failed; reconnecting", "collector", f.cfg.URL, "err", err)
				conn.Close()
				conn = nil
				continue
			}
			f.sent.Add(1)
			break
		}
	}
}

func (f *Forwarder) dial() (net.Conn, error) {
	d := &net.Dialer{Timeout: dialTimeout}
	if f.cfg.TLS != nil && f.network == "tcp" {
		return tls.DialWithDialer(d, "tcp", f.addr, f.cfg.TLS)
	}
	return d.Dial(f.network, f.addr)
}

// write sends one message: a datagram over UDP, "LEN SP MSG" over a stream (RFC 5425 §4.3).
func (f *Forwarder) write(conn net.Conn, msg []byte) error {
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if f.network == "udp" {
		_, err := conn.Write(msg)
		return err
	}
	frame := append(strconv.AppendInt(nil, int64(len(msg)), 10), ' ')
	_, err := conn.Write(append(frame, msg...))
	return err
}
